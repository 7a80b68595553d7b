"""Sweep points without re-reading YAML: the base is parsed once per process.

``load_point(base, overrides)`` returns what ``load_scenario(base, sets=...)`` returns, for
the overrides a sweep usually has (scalar leaves and whole sub-mappings of the scenario,
scalar leaves of its topology or model): it loads the base once with ``load_scenario``
(cached per process, keyed by path, size and modification time), takes the mapping that
``load_scenario`` validates (topology and model embedded), sets the overrides on a copy,
and validates and checks that. Overrides that the loader treats differently (a new topology
or model file, ``topology_overrides``, a side file path, a whole mapping inside the
topology or model file) go through ``load_scenario`` itself. A test checks that both give
equal specs, and equal errors, on every shipped sweep file.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from moesim.errors import SpecError
from moesim.specs.checks import check_scenario
from moesim.specs.loader import apply_overrides, load_scenario, validate_as
from moesim.specs.scenario import ScenarioSpec

Overrides = tuple[tuple[str, Any], ...]

# Paths the loader resolves against files: they take the slow, exact path.
_FILE_PATHS = ("topology", "model", "topology_overrides", "calibration", "routing.load.path")


@functools.lru_cache(maxsize=8)
def _base(path: str, mtime_ns: int, size: int) -> dict[str, Any]:
    """The mapping ``load_scenario(path)`` validates, topology and model embedded."""
    del mtime_ns, size  # cache key only: an edited base is parsed again
    spec = load_scenario(path)
    # exclude_unset keeps the scenario's own fields as the file gave them (so a discriminated
    # union can change kind); topology and model were embedded as full dumps by the loader.
    return _lists(spec.model_dump(exclude_unset=True))


def _lists(node: Any) -> Any:
    """Tuples as lists, as YAML gives them, so ``set_path`` can index into them."""
    if isinstance(node, dict):
        return {k: _lists(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_lists(v) for v in node]
    return node


def fast_path_ok(overrides: Overrides) -> bool:
    """Whether ``overrides`` can be set on the parsed base (else: ``load_scenario``)."""
    for path, value in overrides:
        head = path.split(".", 1)[0]
        if path in _FILE_PATHS or head in ("topology_overrides", "calibration"):
            return False
        if path.startswith("routing.load") and isinstance(value, dict) and "path" in value:
            return False
        if head in ("topology", "model") and isinstance(value, (dict, list)):
            return False
    return True


def load_point(base_path: str | Path, overrides: Overrides) -> ScenarioSpec:
    """The base scenario with ``overrides`` (dotted path, value) applied and checked.

    Raises SpecError as ``load_scenario`` does (the file named is the base scenario).
    """
    p = Path(base_path)
    if not fast_path_ok(overrides):
        return load_scenario(p, sets=set_args(overrides))
    try:
        st = p.stat()
    except OSError:
        return load_scenario(p, sets=set_args(overrides))  # the loader words the error
    data = _base(str(p), st.st_mtime_ns, st.st_size)
    try:
        data = apply_overrides(data, list(overrides))
    except SpecError as exc:
        raise exc.with_file(str(p)) from None
    spec = validate_as(ScenarioSpec, data, file=str(p))
    try:
        check_scenario(spec)
    except SpecError as exc:
        raise exc.with_file(str(p)) from None
    return spec


def set_args(overrides: Overrides) -> list[str]:
    """``PATH=VALUE`` strings whose VALUE parses back (as YAML) to the same object."""
    return [f"{k}={json.dumps(v)}" for k, v in overrides]
