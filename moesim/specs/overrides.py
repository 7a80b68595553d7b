"""``--set PATH=VALUE`` and ``topology_overrides``: dotted paths into parsed YAML.

Every failure is a SpecError that names the path; nothing else escapes.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from moesim.errors import SpecError


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
    """Parse ``path=value`` strings; the value is read as YAML (numbers, bools, lists, maps)."""
    out = []
    for item in items:
        if not isinstance(item, str) or "=" not in item:
            raise SpecError(f"--set {item!r}: expected PATH=VALUE, e.g. "
                            "parallelism.expert_parallel_degree=16")
        path, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except (yaml.YAMLError, ValueError, OverflowError, RecursionError):
            value = raw
        if not path.strip():
            raise SpecError(f"--set {item!r}: the path before '=' is empty")
        out.append((path.strip(), value))
    return out


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
    out = copy.deepcopy(data)
    for path, value in overrides:
        set_path(out, path, value)
    return out


def as_override_items(value: Any, field: str) -> list[tuple[str, Any]]:
    """``topology_overrides`` (a mapping of dotted paths to values) as a list of pairs."""
    if value is None:
        return []
    if not isinstance(value, dict):
        raise SpecError(f"{field}={value!r:.60}: must be a mapping of dotted paths to values, "
                        "e.g. {tiers.1.num_domains: 8}", field=field)
    return [(str(k), v) for k, v in value.items()]
