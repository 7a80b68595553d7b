"""Load YAML specs, apply ``--set`` overrides, and turn every failure into one SpecError line."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from moesim import shipped
from moesim.errors import SpecError
from moesim.specs.checks import check_scenario
from moesim.specs.hardware import TopologySpec
from moesim.specs.hf import HF_PREFIX, hf_config_hint, import_model
from moesim.specs.messages import format_error
from moesim.specs.model import MoEModelSpec
from moesim.specs.overrides import apply_overrides, as_override_items, parse_set, set_path
from moesim.specs.scenario import ScenarioSpec
from moesim.specs.yamlsafe import (
    MAX_FILE_BYTES,
    PARSE_ERRORS,
    parse_yaml,
    read_text_bounded,
    yaml_problem,
)

__all__ = ["apply_overrides", "detect_kind", "is_file", "load_model", "load_scenario",
           "load_topology", "parse_set", "read_yaml", "set_path", "validate_as", "validate_file"]

T = TypeVar("T", bound=BaseModel)


def is_file(path: Path) -> bool:
    """``path.is_file()`` that answers False for names the OS rejects (too long, NUL bytes)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file once, bounded in size, depth and alias expansion (see yamlsafe);
    a syntax error names the line and column, never the line's text."""
    p = Path(path)
    if not is_file(p):
        if _is_dir(p):
            raise SpecError("is a folder, not a file; name a YAML file", file=str(p))
        raise SpecError(f"file not found: {p}; check the path (relative paths are resolved "
                        "against the file that names them)", file=str(p))
    text = read_text_bounded(p)
    try:
        return parse_yaml(text)
    except PARSE_ERRORS as exc:
        raise SpecError(yaml_problem(exc), file=str(p)) from None


def _is_dir(p: Path) -> bool:
    try:
        return p.is_dir()
    except (OSError, ValueError):
        return False


def validate_as(model: type[T], data: Any, file: str | None = None) -> T:
    """Validate ``data`` as ``model``; errors become one SpecError line."""
    if not isinstance(data, dict):
        raise SpecError(f"expected a mapping at the top level, got {type(data).__name__}", file=file)
    if model is MoEModelSpec and (hint := hf_config_hint(data)):
        raise SpecError(hint, file=file)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        field, message = format_error(model, exc, data)
        raise SpecError(message, file=file, field=field) from None
    except RecursionError:
        raise SpecError("value nested too deeply", file=file) from None


# --- resolution ------------------------------------------------------------------------------

def _resolve_ref(base: Path, ref: str) -> Path:
    p = Path(ref)
    return p if p.is_absolute() else (base / p)


def load_topology(path: str | Path, overrides: dict[str, Any] | None = None) -> TopologySpec:
    """Load a topology file or shipped topology by name (``dgx-h100-superpod``);
    ``overrides`` maps dotted paths to values (as topology_overrides)."""
    path = shipped.resolve(path, "topology")
    data = read_yaml(path)
    _require_kind(data, TopologySpec, "topology", path)
    if overrides and isinstance(data, dict):
        data = _with_file(lambda: apply_overrides(data, as_override_items(overrides, "overrides")),
                          path)
    return validate_as(TopologySpec, data, file=str(path))


def load_model(path: str | Path) -> MoEModelSpec:
    """Load a model file, or a shipped model by name (``mixtral-8x7b``)."""
    path = shipped.resolve(path, "model")
    data = read_yaml(path)
    _require_kind(data, MoEModelSpec, "model", path)
    return validate_as(MoEModelSpec, data, file=str(path))


def load_scenario(path: str | Path, sets: list[str] | tuple[str, ...] = (), *,
                  data: Any = None) -> ScenarioSpec:
    """Load a scenario, resolve its topology and model, apply ``--set``, check consistency.

    ``--set topology.X=V`` / ``model.X=V`` go into the referenced file when the scenario names
    one by path; every other path goes into the scenario itself. ``data``: the file as
    ``read_yaml`` already parsed it (so a caller that looked inside does not parse it again).
    A bare name that is no file names a shipped scenario (``mixtral-8x7b-64xh100``)."""

    p = Path(path) if data is not None else shipped.resolve(path, "scenario")
    if data is None:
        data = read_yaml(p)
    if not isinstance(data, dict):
        raise SpecError(f"expected a mapping at the top level, got {type(data).__name__}",
                        file=str(p))
    own, routed = _split_sets(data, _with_file(lambda: parse_set(sets), p))
    data = _with_file(lambda: apply_overrides(data, own), p)
    extra = _with_file(lambda: as_override_items(data.get("topology_overrides"),
                                                 "topology_overrides"), p)
    base = p.parent
    data = _embed(data, "topology", base, p, extra + routed["topology"])
    data = _embed(data, "model", base, p, routed["model"])
    _resolve_side_files(data, base, p)
    return scenario_from_data(data, p)


def _require_kind(data: Any, cls: type[BaseModel], what: str, path: str | Path,
                  scenario: Path | None = None) -> None:
    """Refuse a file that is not a ``what`` spec at all (no top-level key is one of its
    fields), without quoting it: a scenario naming ``/etc/shadow`` must not print its lines."""
    where = {"file": str(scenario), "field": what} if scenario else {"file": str(path)}
    prefix = f"{what}={_shown_path(Path(path))}: " if scenario else ""
    if not isinstance(data, dict):
        raise SpecError(f"{prefix}not a {what} file: expected a mapping of its fields at the "
                        f"top level, got {type(data).__name__}", **where)
    if data and not any(isinstance(k, str) and k in cls.model_fields for k in data):
        fields = ", ".join(k for k, f in cls.model_fields.items() if f.is_required())
        raise SpecError(f"{prefix}not a {what} file: none of its {len(data)} top-level keys is "
                        f"a {what} field (a {what} needs {fields})", **where)


def scenario_from_data(data: dict[str, Any], path: str | Path) -> ScenarioSpec:
    """Validate a resolved scenario mapping and check its consistency; errors name ``path``."""
    spec = validate_as(ScenarioSpec, data, file=str(path))
    for key in ("topology", "model"):
        if isinstance(getattr(spec, key), str):  # set after resolution (a sweep's fast path)
            raise SpecError(f"{key} must name a {key} file or hold its fields",
                            file=str(path), field=key)
    try:
        check_scenario(spec)
    except SpecError as exc:
        raise exc.with_file(str(path)) from None
    return spec


def _with_file(fn: Any, path: str | Path) -> Any:
    """Run ``fn``; a SpecError it raises is attributed to ``path``."""
    try:
        return fn()
    except SpecError as exc:
        raise exc.with_file(str(path)) from None


def _split_sets(data: dict[str, Any], overrides: list[tuple[str, Any]]
                ) -> tuple[list[tuple[str, Any]], dict[str, list[tuple[str, Any]]]]:
    """Overrides for the scenario itself, and those routed into a referenced file."""
    own: list[tuple[str, Any]] = []
    routed: dict[str, list[tuple[str, Any]]] = {"topology": [], "model": []}
    for k, v in overrides:
        head, _, rest = k.partition(".")
        if head in routed and rest and isinstance(data.get(head), str):
            routed[head].append((rest, v))
        else:
            own.append((k, v))
    return own, routed


# Side files are data tables, not specs: the shipped calibration table is 91 KB and a per-layer
# expert histogram of DeepSeek-V3 (58 x 256 loads) about 100 KB; 64 MiB of JSON is 700x that
# and parses in about a second. A YAML histogram gets the spec limit (YAML parses ~100x slower).
MAX_TABLE_BYTES = 64 << 20


def _resolve_side_files(data: dict[str, Any], base: Path, scenario: Path) -> None:
    """Make the calibration table and a histogram load file absolute; check they exist and
    parse within bounds (the engine reads them later, and must not meet a bomb)."""
    if isinstance(data.get("calibration"), str) and data["calibration"].lower() == "none":
        data["calibration"] = "none"
    elif isinstance(data.get("calibration"), str):
        data["calibration"] = _side_file(base, data["calibration"], scenario, "calibration")
    workload = data.get("workload")
    arrival = workload.get("arrival") if isinstance(workload, dict) else None
    if (isinstance(arrival, dict) and arrival.get("kind") == "trace"
            and isinstance(arrival.get("path"), str)):
        # A request trace (CSV or JSON Lines) is read and checked row by row when the
        # scenario is checked (moesim.specs.serving_trace); here it only has to exist.
        ref = _resolve_ref(base, arrival["path"])
        if not is_file(ref):
            raise SpecError(f"workload.arrival.path={_short_ref(arrival['path'])}: file not "
                            "found; give a path relative to the scenario file",
                            file=str(scenario), field="workload.arrival.path")
        arrival["path"] = str(ref)
    routing = data.get("routing")
    load = routing.get("load") if isinstance(routing, dict) else None
    if isinstance(load, dict) and isinstance(load.get("path"), str):
        load["path"] = _side_file(base, load["path"], scenario, "routing.load.path")


def _side_file(base: Path, given: str, scenario: Path, field: str) -> str:
    ref = _resolve_ref(base, given)
    if not is_file(ref):
        raise SpecError(f"{field}={_short_ref(given)}: file not found; give a path relative "
                        "to the scenario file", file=str(scenario), field=field)
    is_json = ref.suffix == ".json"
    text = read_text_bounded(ref, MAX_TABLE_BYTES if is_json else MAX_FILE_BYTES)
    try:
        if is_json:
            json.loads(text)
        else:
            parse_yaml(text)
    except (*PARSE_ERRORS, json.JSONDecodeError) as exc:
        what = (f"not JSON: {exc.msg} at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError)
                else "not JSON: nested too deeply" if is_json else yaml_problem(exc))
        raise SpecError(f"{field}: {what}", file=str(ref), field=field) from None
    return str(ref)


def _embed(data: dict[str, Any], key: str, base: Path, scenario: Path,
           overrides: list[tuple[str, Any]]) -> dict[str, Any]:
    """Replace a path in ``data[key]`` by the validated file it names, overrides applied."""
    ref = data.get(key)
    if isinstance(ref, str):
        hf = key == "model" and ref.startswith(HF_PREFIX)  # a Hugging Face config, imported
        target = _resolve_ref(base, ref.removeprefix(HF_PREFIX) if hf else ref)
        if not hf and not is_file(target):  # a bare name: a shipped topology or model
            target = shipped.find_shipped(ref, key) or target
        if not is_file(target):
            what = "is a folder, not a file" if _is_dir(target) else "referenced file not found"
            raise SpecError(f"{key}={_short_ref(ref)}: {what} (looked for "
                            f"{_shown_path(target)}); give a path relative to the scenario "
                            f"file or a shipped {key} name ({_names_hint(key)})",
                            file=str(scenario), field=key)
        sub = import_model(target).spec.model_dump() if hf else read_yaml(target)
        cls = TopologySpec if key == "topology" else MoEModelSpec
        _require_kind(sub, cls, key, target, scenario)
        sub = _with_file(lambda: apply_overrides(sub, overrides), scenario)
        data[key] = _validate_routed(cls, sub, target, key, scenario, overrides).model_dump()
    elif isinstance(ref, dict) and overrides:
        data[key] = _with_file(lambda: apply_overrides(ref, overrides), scenario)
    return data


def _validate_routed(cls: type[T], sub: dict[str, Any], target: Path, key: str, scenario: Path,
                     overrides: list[tuple[str, Any]]) -> T:
    """Validate a referenced file; an error in a field that ``--set key.X=V`` changed is the
    scenario's (named as ``key.X``), any other is the referenced file's."""
    try:
        return validate_as(cls, sub, file=str(target))
    except SpecError as exc:
        field = exc.field or ""
        if not any(field == p or field.startswith(p + ".") or p.startswith(field + ".")
                   for p, _ in overrides) or not field:
            raise
        bare = exc.bare
        msg = f"{key}.{bare}" if bare.startswith(field) else f"{key}: {bare}"
        raise SpecError(msg, file=str(scenario), field=f"{key}.{field}") from None


def _names_hint(kind: str) -> str:
    names = shipped.shipped_names(kind)
    shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
    return f"e.g. {shown}; see `moesim topology list`" if kind == "topology" else f"e.g. {shown}"


def _short_ref(ref: str) -> str:
    return repr(ref) if len(ref) <= 80 else repr("..." + ref[-77:])


def _shown_path(target: Path) -> str:
    try:
        return os.path.relpath(target)
    except ValueError:
        return str(target)


def detect_kind(data: Any) -> str:
    """Which spec a parsed YAML file holds: topology, model, scenario or sweep."""
    if not isinstance(data, dict):
        return "unknown"
    if "tiers" in data or "accelerator" in data:
        return "topology"
    if "axes" in data or "base" in data:
        return "sweep"
    if "workload" in data or "parallelism" in data:
        return "scenario"
    if "num_layers" in data or "hidden_size" in data:
        return "model"
    return "unknown"


def validate_file(path: str | Path, sets: list[str] | tuple[str, ...] = (), *,
                  data: Any = None) -> tuple[str, BaseModel]:
    """Validate any spec file, with ``--set`` overrides applied; returns (kind, spec).
    ``data``: the file as ``read_yaml`` already parsed it."""
    if data is None:
        data = read_yaml(path)
    kind = detect_kind(data)
    if kind == "scenario":
        return kind, load_scenario(path, sets, data=data)
    if sets and isinstance(data, dict):
        data = _with_file(lambda: apply_overrides(data, parse_set(sets)), path)
    elif sets:
        _with_file(lambda: parse_set(sets), path)  # a malformed --set is an error everywhere
    if kind == "topology":
        return kind, validate_as(TopologySpec, data, file=str(path))
    if kind == "model":
        return kind, validate_as(MoEModelSpec, data, file=str(path))
    if kind == "sweep":
        from moesim.specs.sweep import load_sweep

        return kind, load_sweep(path, data=data)
    raise SpecError("cannot tell what this file is: a topology has 'tiers', a model "
                    "'num_layers', a scenario 'workload', a sweep 'axes'", file=str(path))
