"""moesim's version, from git tags (setuptools-scm's scheme, without the dependency).

Imports nothing from moesim: ``setup.py`` loads this file by path at build time.

Where the version comes from, first hit wins:

1. ``moesim/_build_version.py``, which ``setup.py`` writes into a wheel (an installed
   moesim has no git);
2. ``git describe`` of the checkout the package sits in: a tag ``vX.Y.Z`` on the current
   commit gives ``X.Y.Z``; N commits after it ``X.Y.(Z+1).devN+g<commit>``, as
   setuptools-scm's default "guess-next-dev" scheme does; uncommitted changes add
   ``.dirty``; no tag at all counts from ``0.1.0`` (:data:`FALLBACK_VERSION`) as
   ``0.1.0.devN+g<commit>``;
3. the ``Version:`` of a source distribution's ``PKG-INFO`` (an sdist has no git either);
4. :data:`FALLBACK_VERSION`.
"""

from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path

FALLBACK_VERSION = "0.1.0"
TAG_PATTERN = "v[0-9]*"
_DESCRIBE = re.compile(r"^v?(?P<tag>\d+(?:\.\d+)*)-(?P<distance>\d+)-g(?P<sha>[0-9a-f]+)"
                       r"(?P<dirty>-dirty)?$")


def from_describe(described: str) -> str | None:
    """PEP 440 version of ``git describe --tags --long --dirty`` output, or None."""
    m = _DESCRIBE.match(described.strip())
    if m is None:
        return None
    tag, distance, sha = m["tag"], int(m["distance"]), m["sha"]
    dirty = ".dirty" if m["dirty"] else ""
    if distance == 0:
        return tag + (f"+g{sha}{dirty}" if dirty else "")
    parts = tag.split(".")
    parts[-1] = str(int(parts[-1]) + 1)
    return f"{'.'.join(parts)}.dev{distance}+g{sha}{dirty}"


def _git(root: Path, *args: str) -> str | None:
    try:
        run = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                             timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return run.stdout.strip() if run.returncode == 0 else None


def git_version(root: Path) -> str | None:
    """The version of the git checkout at ``root`` (None when it is none)."""
    if not (root / ".git").exists():
        return None
    described = _git(root, "describe", "--tags", "--long", "--dirty", "--match", TAG_PATTERN)
    if described is not None:
        return from_describe(described)
    count = _git(root, "rev-list", "--count", "HEAD")
    sha = _git(root, "rev-parse", "--short", "HEAD")
    if count is None or sha is None:
        return None
    dirty = ".dirty" if _git(root, "status", "--porcelain", "--untracked-files=no") else ""
    return f"{FALLBACK_VERSION}.dev{count}+g{sha}{dirty}"


def pkg_info_version(root: Path) -> str | None:
    """``Version:`` of ``root/PKG-INFO`` (a source distribution), or None."""
    try:
        text = (root / "PKG-INFO").read_text(encoding="utf-8")
    except OSError:
        return None
    m = re.search(r"^Version:\s*(\S+)\s*$", text, re.MULTILINE)
    return m[1] if m else None


def source_version(root: Path) -> str:
    """The version of the source tree at ``root`` (what ``setup.py`` builds)."""
    return git_version(root) or pkg_info_version(root) or FALLBACK_VERSION


@functools.lru_cache(maxsize=1)  # git runs once per process: the checkout does not change under it
def version() -> str:
    """The running moesim's version (the module docstring says from where)."""
    try:
        from moesim._build_version import VERSION  # type: ignore[import-not-found]
    except ImportError:
        pass
    else:
        return str(VERSION)
    return source_version(Path(__file__).resolve().parents[1])
