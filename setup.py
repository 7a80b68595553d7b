"""Build hooks that pyproject.toml cannot express.

- The version comes from git tags (``moesim/_version.py``, setuptools-scm's scheme) and is
  frozen into the wheel as ``moesim/_build_version.py``.
- The repository's ``topologies/``, ``scenarios/`` and ``calibration/`` folders are copied
  into the wheel as ``moesim/_data/<folder>/``, where ``moesim.shipped`` finds them when moesim
  runs outside the checkout. An editable install reads them in place and copies nothing.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
DATA_FOLDERS = ("topologies", "scenarios", "calibration")  # as moesim.shipped.DATA_FOLDERS
DATA_SUFFIXES = {".yaml", ".yml", ".json", ".md"}


def _version() -> str:
    spec = importlib.util.spec_from_file_location("_moesim_version", ROOT / "moesim" / "_version.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.source_version(ROOT)


VERSION = _version()


class BuildWithData(build_py):
    """build_py, plus the shipped data and the frozen version inside the built package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "moesim"
        for folder in DATA_FOLDERS:
            src, dst = ROOT / folder, target / "_data" / folder
            if dst.exists():
                shutil.rmtree(dst)
            for f in sorted(src.rglob("*")):
                if f.is_file() and f.suffix in DATA_SUFFIXES:
                    out = dst / f.relative_to(src)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(f, out)
        (target / "_build_version.py").write_text(
            f'"""Written by setup.py at build time."""\n\nVERSION = "{VERSION}"\n',
            encoding="utf-8")


setup(version=VERSION, cmdclass={"build_py": BuildWithData})
