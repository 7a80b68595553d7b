"""``--set PATH=VALUE`` and ``topology_overrides``: dotted paths into parsed YAML.

Every failure is a SpecError that names the path; nothing else escapes.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError

from moesim.errors import SpecError
from moesim.specs.yamlsafe import PARSE_ERRORS, parse_yaml, shown_key, yaml_problem

# A dotted path names fields, list indexes and mapping keys: no spec nests deeper than this.
MAX_PATH_PARTS = 16
_PART = re.compile(r"[A-Za-z0-9_\-]{1,64}")


def set_strings(sets: Mapping[str, Any] | Iterable[str] | None) -> tuple[str, ...]:
    """``--set`` strings from ``{"path": value}`` (each value as JSON, which YAML reads back)
    or from strings already of the form ``path=value``."""
    if sets is None:
        return ()
    if isinstance(sets, Mapping):
        return tuple(f"{k}={json.dumps(v)}" for k, v in sets.items())
    return tuple(sets)


def scenario_with_sets(scenario: Any, sets: Mapping[str, Any] | Iterable[str] | None) -> Any:
    """A ScenarioSpec from a loaded spec or a YAML path, ``sets`` applied as ``--set`` (into
    the embedded topology and model of a loaded spec; revalidated and rechecked)."""
    from moesim.specs.loader import load_scenario, scenario_from_data

    items = set_strings(sets)
    if isinstance(scenario, (str, Path)):
        return load_scenario(scenario, items)
    if not items:
        return scenario
    data = apply_overrides(scenario.model_dump(), parse_set(items))
    return scenario_from_data(data, scenario.name)


def parse_set(items: list[str] | tuple[str, ...]) -> list[tuple[str, Any]]:
    """Parse ``path=value`` strings; the value is read as YAML (numbers, bools, lists, maps),
    with the limits a spec file has (yamlsafe); text that is not YAML stays text."""
    out = []
    for item in items:
        if not isinstance(item, str) or "=" not in item:
            raise SpecError(f"--set {_short(item)}: expected PATH=VALUE, e.g. "
                            "parallelism.expert_parallel_degree=16")
        path, raw = item.split("=", 1)
        path = path.strip()
        check_path(path, f"--set {_short(item)}")
        try:
            value = parse_yaml(raw) if raw.strip() else ""
        except PARSE_ERRORS as exc:
            if isinstance(exc, yaml.YAMLError) and not isinstance(exc, ConstructorError):
                value = raw  # not YAML: the text itself (a name, a description)
            else:
                raise SpecError(f"--set {path}: {yaml_problem(exc)}", field=path) from None
        out.append((path, value))
    return out


def check_path(path: str, where: str) -> None:
    """A dotted override path: non-empty parts of letters, digits, '_' or '-', at most 16."""
    if not path:
        raise SpecError(f"{where}: the path before '=' is empty")
    parts = path.split(".")
    if len(parts) > MAX_PATH_PARTS:
        raise SpecError(f"{where}: a path of {len(parts)} parts; no spec nests deeper than "
                        f"{MAX_PATH_PARTS}", field=_short(path))
    bad = next((p for p in parts if not _PART.fullmatch(p)), None)
    if bad is not None:
        what = "an empty part" if not bad else f"the part {_short(bad)}"
        raise SpecError(f"{where}: {what} is not a field name or list index; write dotted "
                        "names, e.g. parallelism.expert_parallel_degree", field=_short(path))


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value) if not isinstance(value, str) else repr(value[: limit + 1])
    return text if len(text) <= limit else text[: limit - 3] + "..."


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted path in nested dicts/lists, creating dicts as needed."""
    path = str(path)
    keys = path.split(".")
    node: Any = data
    for i, key in enumerate(keys[:-1]):
        node = _descend(node, key, keys[i + 1], path)
    last = keys[-1]
    if isinstance(node, list):
        node[_index(node, last, path)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise SpecError(f"override {path}: {last!r} is inside a value that is not a mapping "
                        f"(found {type(node).__name__})", field=path)


def _index(node: list[Any], key: str, path: str) -> int:
    if not key.isdigit() or int(key) >= len(node):
        raise SpecError(f"override {path}: {key!r} is not an index of a list of {len(node)}",
                        field=path)
    return int(key)


def _descend(node: Any, key: str, nxt: str, path: str) -> Any:
    if isinstance(node, list):
        return node[_index(node, key, path)]
    if not isinstance(node, dict):
        raise SpecError(f"override {path}: {key!r} is inside a value that is not a mapping "
                        f"(found {type(node).__name__})", field=path)
    if key not in node or node[key] is None:
        node[key] = {}
    return node[key]


def apply_overrides(data: dict[str, Any], overrides: list[tuple[str, Any]]) -> dict[str, Any]:
    """A deep copy of ``data`` with each (dotted path, value) set, in order."""
    for path, _ in overrides:
        check_path(str(path), f"override {_short(path)}")
    out = copy.deepcopy(data)
    for path, value in overrides:
        set_path(out, path, value)
    return out


def as_override_items(value: Any, field: str) -> list[tuple[str, Any]]:
    """``topology_overrides`` (a mapping of dotted paths to values) as a list of pairs."""
    if value is None:
        return []
    if not isinstance(value, dict):
        raise SpecError(f"{field}={_short(value)}: must be a mapping of dotted paths to values, "
                        "e.g. {tiers.1.num_domains: 8}", field=field)
    for k in value:
        check_path(str(k), f"{field} key {shown_key(k)}")
    return [(str(k), v) for k, v in value.items()]
