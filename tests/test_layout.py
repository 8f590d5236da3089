"""The house rules of core/, checked on the source: layers, no cycles, small modules, no hidden imports.

Every import of every engine module is read from its syntax tree (function-local ones included;
imports under `if TYPE_CHECKING:` are for type checkers only and do not count).
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10 (the `test` extra installs tomli there)
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "core"
MAX_LINES = 400

# Layers, bottom first: a module may import its own layer and the layers below it.
LAYERS: list[tuple[str, ...]] = [
    ("probebank.errors", "probebank.contracts", "probebank.specs", "probebank.version"),
    ("probebank.paths", "probebank.hashing", "probebank.metrics", "probebank.jsonl", "probebank.hookspecs",
     "probebank.plugins", "probebank.cache"),
    ("probebank.data",),
    ("probebank.extract", "probebank.probing"),
    ("probebank.bases",),
    ("probebank.causal",),  # reads stores and probe records, runs models: above extract and probing alike
    ("probebank.results",),
    ("probebank.scale",),
    ("probebank.settings", "probebank.run"),
    ("probebank.report",),
    ("probebank.cli", "probebank.__main__", "probebank"),
]
# Side by side on one layer, but never importing each other.
APART = [("probebank.extract", "probebank.probing")]
# Third-party modules heavy enough to import only where they are used.
LAZY_OK = ("torch", "transformers", "datasets", "sklearn", "scipy", "highspy", "numba", "safetensors", "gguf",
           "tokenizers", "rich", "tqdm", "yaml", "spacy", "difflib", "websocket", "matplotlib")
# Engine modules whose import is itself heavy: the numba-compiled exact search.
LAZY_ENGINE = {"probebank.probing.exact.squares",
               "probebank.scale.extractors"}  # torch, for the Ray extraction actors: kept out of the probe workers


def module_name(path: Path) -> str:
    parts = ["probebank", *path.relative_to(CORE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve(node: ast.ImportFrom, mod: str, is_pkg: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(path: Path, mod: str | None = None) -> list[tuple[str, bool, int]]:
    """(imported module, inside a function, line) for every import outside TYPE_CHECKING blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    mod, is_pkg = mod or module_name(path), path.name == "__init__.py"
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    local: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            local.update(id(n) for n in ast.walk(node) if n is not node)
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(a.name, id(node) in local, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = resolve(node, mod, is_pkg)
            for a in node.names:  # `from probebank.data import splits` imports a module
                sub = f"{target}.{a.name}"
                full = sub if (CORE / Path(*sub.split(".")[1:])).with_suffix(".py").exists() \
                    or (CORE / Path(*sub.split(".")[1:]) / "__init__.py").exists() else target
                out.append((full, id(node) in local, node.lineno))
    return out


def layer_of(name: str) -> int:
    best, rank = -1, -1
    for i, group in enumerate(LAYERS):
        for prefix in group:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    return rank


def family(name: str) -> str:
    return ".".join(name.split(".")[:2])


MODULES = sorted(CORE.rglob("*.py"))
GRAPH = {module_name(p): imports(p) for p in MODULES}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(CORE)))
def test_imports_point_down_only(path: Path) -> None:
    mod = module_name(path)
    assert layer_of(mod) >= 0, f"{mod} belongs to no layer: add it to LAYERS"
    for target, _, line in GRAPH[mod]:
        if not target.startswith("probebank"):
            continue
        assert not target.startswith("probebank_plugins"), f"{mod}:{line} imports a plugin module by name"
        assert layer_of(target) <= layer_of(mod), f"{mod}:{line} imports {target}, a higher layer"
        for a, b in APART:
            pair = {family(mod), family(target)}
            assert pair != {a, b}, f"{mod}:{line} imports {target}: {a} and {b} never import each other"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(CORE)))
def test_function_local_imports_only_for_heavy_modules(path: Path) -> None:
    mod = module_name(path)
    if mod.startswith("probebank.cli"):  # commands load their part of the engine on use: `probebank list` is fast
        return
    for target, local, line in GRAPH[mod]:
        if local and target.startswith("probebank"):
            assert target in LAZY_ENGINE, f"{mod}:{line} imports {target} inside a function"
        elif local:
            assert target.split(".")[0] in LAZY_OK, f"{mod}:{line} imports {target} inside a function"


def test_no_import_cycles() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    for mod, targets in GRAPH.items():
        for target, _, _ in targets:
            if target in GRAPH and target != mod and not target == "probebank":
                edges[mod].add(target)
    seen: dict[str, int] = {}  # 1 = on the stack, 2 = done

    def visit(node: str, path: list[str]) -> None:
        seen[node] = 1
        for nxt in sorted(edges[node]):
            if seen.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in seen:
                visit(nxt, path + [nxt])
        seen[node] = 2

    for mod in sorted(GRAPH):
        if mod not in seen:
            visit(mod, [mod])


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(CORE)))
def test_modules_stay_small(path: Path) -> None:
    n = len(path.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(CORE)} has {n} lines: split it by job"


def test_the_rules_catch_what_they_claim(tmp_path: Path) -> None:
    """The reader sees function-local and relative imports, skips TYPE_CHECKING ones; layers rank by prefix."""
    f = tmp_path / "x.py"
    f.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import torch\n"
                 "from . import splits\n\n\ndef g():\n    from probebank.run import run\n")
    found = {(t, local) for t, local, _ in imports(f, "probebank.data.fake")}
    assert ("probebank.data.splits", False) in found and ("probebank.run", True) in found
    assert not any(t == "torch" for t, _ in found)
    assert layer_of("probebank.data.gates") < layer_of("probebank.probing.evaluate") < layer_of("probebank.run")
    assert layer_of("probebank.errors") == 0 and layer_of("probebank") == len(LAYERS) - 1
    assert layer_of("probebank.extract.store") == layer_of("probebank.probing.schema")


def test_public_api_names_resolve() -> None:
    import probebank

    for name in probebank.__all__:
        assert getattr(probebank, name) is not None, name
    source = (CORE / "__init__.py").read_text(encoding="utf-8")
    checking = next(n for n in ast.parse(source).body if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test))
    typed = {a.asname or a.name for node in ast.walk(checking) if isinstance(node, ast.ImportFrom) for a in node.names}
    assert typed == set(probebank.__all__) - {"__version__"}  # type checkers see every exported name


def test_every_sub_package_ships_in_the_wheel() -> None:
    """pyproject lists packages by hand (package-dir maps core -> probebank): a new folder must be listed."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = set()
    for folder, name in (("core", "probebank"), ("plugins", "probebank_plugins")):
        for init in (ROOT / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / folder).parts
            on_disk.add(".".join((name, *parts)))
    assert on_disk - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
