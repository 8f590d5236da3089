# Two commands for a newcomer:  `make demo`  (set up + run the quick suite on SmolLM2-135M)
#                               `make test`  (set up + run the test suite; CI runs this)
PYTHON ?= python3.11
VENV   ?= .venv
PY      = $(VENV)/bin/python

.PHONY: setup demo test lint bench clean chromium

setup: $(VENV)/.installed

# constraints/cpu.txt pins the versions tested here (torch: this machine's CPU build); the extras the tests need.
# Each step says what it does; pip shows what it collects and downloads (torch, transformers, scikit-learn,
# spaCy, ...: about 2 GB and several minutes the first time, seconds when nothing changed).
$(VENV)/.installed: pyproject.toml setup.py constraints/cpu.txt
	@echo "setup 1/3: creating the virtual environment $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	@echo "setup 2/3: upgrading pip"
	$(PY) -m pip install --quiet --upgrade pip
	@echo "setup 3/3: installing probebank and its dependencies into $(VENV) (several minutes the first time)"
	$(PY) -m pip install --progress-bar on -c constraints/cpu.txt -e '.[test,bank,exact,ray]'
	@touch $@
	@echo "setup done: $(VENV)/bin/probebank is ready"

demo: setup
	$(VENV)/bin/probebank run

# The HTML report tests drive Debian's chromium headless; install it when missing (root: apt-get; else sudo).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium (HTML report tests)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# ruff, then mypy on the installed names: build/typecheck links probebank -> core, probebank_plugins -> plugins
lint: setup
	@mkdir -p build/typecheck && ln -sfn ../../core build/typecheck/probebank && ln -sfn ../../plugins build/typecheck/probebank_plugins
	$(VENV)/bin/ruff check core plugins tests bench
	$(VENV)/bin/mypy

test: setup chromium lint
	$(PY) -m pytest

bench: setup
	$(PY) bench/extract.py
	$(PY) bench/probe.py

clean:
	rm -rf $(VENV) build dist *.egg-info probebank-out .pytest_cache
