"""Where moesim's shipped data lives, and shipped specs addressed by name.

The data are the repository's top-level folders ``topologies/``, ``scenarios/`` (with
``models/``, ``published/`` and ``sweeps/``) and ``calibration/``. In a checkout (``pip
install -e .`` or ``PYTHONPATH``) they are read where they are, beside the ``moesim``
package; a wheel carries copies in ``moesim/_data/<folder>/`` (``setup.py``'s ``build_py``
copies them at build time), so an installed moesim finds them without the repository.

A spec argument that names no existing file and looks like a bare name (``dgx-h100-superpod``,
``mixtral-8x7b-64xh100.yaml``) is looked up among the shipped files of its kind
(:data:`KIND_DIRS`); a path that exists always wins.
"""

from __future__ import annotations

from pathlib import Path

DATA_FOLDERS = ("topologies", "scenarios", "calibration")
PACKAGED = "_data"  # moesim/_data/<folder> inside a wheel

# Kind of spec -> the shipped folders searched for a bare name, in order.
KIND_DIRS: dict[str, tuple[str, ...]] = {
    "topology": ("topologies",),
    "model": ("scenarios/models",),
    "scenario": ("scenarios", "scenarios/published"),
    "case": ("scenarios/published",),
    "sweep": ("scenarios/sweeps",),
}
SUFFIXES = (".yaml", ".yml")


def data_root() -> Path:
    """The folder holding ``topologies/``, ``scenarios/`` and ``calibration/``: the wheel's
    ``moesim/_data`` when present, else the checkout's root beside the package."""
    pkg = Path(__file__).resolve().parent
    packaged = pkg / PACKAGED
    if (packaged / "topologies").is_dir():
        return packaged
    return pkg.parent


def shipped_dir(folder: str) -> Path:
    """A shipped folder by its repository path, e.g. ``scenarios/published``."""
    return data_root() / folder


def is_bare_name(ref: str) -> bool:
    """A name without a folder part: ``dgx-h100-superpod`` or ``default.yaml``."""
    return bool(ref) and "/" not in ref and "\\" not in ref and ref not in (".", "..")


def find_shipped(name: str, kind: str) -> Path | None:
    """The shipped file of ``kind`` called ``name`` (with or without ``.yaml``), or None."""
    if not is_bare_name(name):
        return None
    stems = [name] if name.endswith(SUFFIXES) else [name + s for s in SUFFIXES]
    for folder in KIND_DIRS[kind]:
        for stem in stems:
            path = shipped_dir(folder) / stem
            try:
                if path.is_file():
                    return path
            except (OSError, ValueError):
                return None
    return None


def resolve(ref: str | Path, kind: str) -> Path:
    """``ref`` itself when it exists (or is no bare name), else the shipped file of that
    name, else ``ref`` unchanged (the caller reports it as not found)."""
    p = Path(ref)
    try:
        if p.exists():
            return p
    except (OSError, ValueError):
        return p
    return find_shipped(str(ref), kind) or p


def shipped_names(kind: str) -> list[str]:
    """Names of the shipped files of ``kind`` (for messages and listings), sorted."""
    out: set[str] = set()
    for folder in KIND_DIRS[kind]:
        d = shipped_dir(folder)
        if d.is_dir():
            out |= {f.stem for f in d.iterdir() if f.suffix in SUFFIXES and f.is_file()}
    return sorted(out)
