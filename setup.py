"""Ships registry.yaml and datasets/ inside the wheel as probebank/_bank/.

A checkout (editable install) reads them in place; see probebank.paths.bank_root.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).parent


class BuildPyWithBank(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        bank = Path(self.build_lib) / "probebank" / "_bank"
        bank.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / "registry.yaml", bank / "registry.yaml")
        shutil.copytree(ROOT / "datasets", bank / "datasets", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildPyWithBank})
