"""Load YAML specs, apply ``--set`` overrides, and turn every failure into one SpecError line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from moesim.errors import SpecError
from moesim.specs.checks import check_scenario
from moesim.specs.hardware import TopologySpec
from moesim.specs.hf import HF_PREFIX, hf_config_hint, import_model
from moesim.specs.messages import format_error
from moesim.specs.model import MoEModelSpec
from moesim.specs.overrides import apply_overrides, as_override_items, parse_set, set_path
from moesim.specs.scenario import ScenarioSpec

__all__ = ["apply_overrides", "detect_kind", "is_file", "load_model", "load_scenario",
           "load_topology", "parse_set", "read_yaml", "set_path", "validate_as", "validate_file"]

T = TypeVar("T", bound=BaseModel)


def is_file(path: Path) -> bool:
    """``path.is_file()`` that answers False for names the OS rejects (too long, NUL bytes)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


# libyaml's safe loader where PyYAML was built with it (about 10x faster), else the pure one.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; a syntax error names the line and column."""
    p = Path(path)
    if not is_file(p):
        raise SpecError(f"file not found: {p}; check the path (relative paths are resolved "
                        "against the file that names them)", file=str(p))
    try:
        return yaml.load(p.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        what = (exc.problem or exc.context or "malformed YAML").strip()
        raise SpecError(f"malformed YAML at {where}: {what}", file=str(p)) from None
    except (yaml.YAMLError, UnicodeDecodeError, ValueError, OverflowError) as exc:
        # ValueError / OverflowError: a scalar YAML resolves but Python cannot build (a bad date).
        raise SpecError(f"malformed YAML: {' '.join(str(exc).split())}", file=str(p)) from None
    except RecursionError:
        raise SpecError("malformed YAML: nested too deeply", file=str(p)) from None
    except OSError as exc:
        raise SpecError(f"cannot read the file: {exc.strerror or exc}", file=str(p)) from None


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
    """Load a topology file; ``overrides`` maps dotted paths to values (as topology_overrides)."""
    data = read_yaml(path)
    if overrides and isinstance(data, dict):
        data = _with_file(lambda: apply_overrides(data, as_override_items(overrides, "overrides")),
                          path)
    return validate_as(TopologySpec, data, file=str(path))


def load_model(path: str | Path) -> MoEModelSpec:
    """Load a model file."""
    return validate_as(MoEModelSpec, read_yaml(path), file=str(path))


def load_scenario(path: str | Path, sets: list[str] | tuple[str, ...] = ()) -> ScenarioSpec:
    """Load a scenario, resolve its topology and model, apply ``--set``, check consistency.

    ``--set topology.X=V`` / ``model.X=V`` go into the referenced file when the scenario names
    one by path; every other path goes into the scenario itself."""

    p = Path(path)
    data = read_yaml(p)
    if not isinstance(data, dict):
        raise SpecError("expected a mapping at the top level", file=str(p))
    own, routed = _split_sets(data, parse_set(sets))
    data = _with_file(lambda: apply_overrides(data, own), p)
    extra = _with_file(lambda: as_override_items(data.get("topology_overrides"),
                                                 "topology_overrides"), p)
    base = p.parent
    data = _embed(data, "topology", base, p, extra + routed["topology"])
    data = _embed(data, "model", base, p, routed["model"])
    _resolve_side_files(data, base, p)
    return scenario_from_data(data, p)


def scenario_from_data(data: dict[str, Any], path: str | Path) -> ScenarioSpec:
    """Validate a resolved scenario mapping and check its consistency; errors name ``path``."""
    spec = validate_as(ScenarioSpec, data, file=str(path))
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


def _resolve_side_files(data: dict[str, Any], base: Path, scenario: Path) -> None:
    """Make the calibration table and a histogram load file absolute; check they exist."""
    if isinstance(data.get("calibration"), str) and data["calibration"].lower() == "none":
        data["calibration"] = "none"
    elif isinstance(data.get("calibration"), str):
        ref = _resolve_ref(base, data["calibration"])
        if not is_file(ref):
            raise SpecError(f"calibration={data['calibration']!r}: file not found; give a path "
                            "relative to the scenario file", file=str(scenario), field="calibration")
        data["calibration"] = str(ref)
    routing = data.get("routing")
    load = routing.get("load") if isinstance(routing, dict) else None
    if isinstance(load, dict) and isinstance(load.get("path"), str):
        ref = _resolve_ref(base, load["path"])
        if not is_file(ref):
            raise SpecError(f"routing.load.path={load['path']!r}: file not found; give a path "
                            "relative to the scenario file", file=str(scenario),
                            field="routing.load.path")
        load["path"] = str(ref)


def _embed(data: dict[str, Any], key: str, base: Path, scenario: Path,
           overrides: list[tuple[str, Any]]) -> dict[str, Any]:
    """Replace a path in ``data[key]`` by the validated file it names, overrides applied."""
    ref = data.get(key)
    if isinstance(ref, str):
        hf = key == "model" and ref.startswith(HF_PREFIX)  # a Hugging Face config, imported
        target = _resolve_ref(base, ref.removeprefix(HF_PREFIX) if hf else ref)
        if not is_file(target):
            raise SpecError(f"{key}={ref!r}: referenced file not found (looked for "
                            f"{_shown_path(target)}); give a path relative to the scenario "
                            "file", file=str(scenario), field=key)
        sub = import_model(target).spec.model_dump() if hf else read_yaml(target)
        if not isinstance(sub, dict):
            raise SpecError("expected a mapping at the top level", file=str(target))
        sub = _with_file(lambda: apply_overrides(sub, overrides), scenario)
        cls = TopologySpec if key == "topology" else MoEModelSpec
        data[key] = validate_as(cls, sub, file=str(target)).model_dump()
    elif isinstance(ref, dict) and overrides:
        data[key] = _with_file(lambda: apply_overrides(ref, overrides), scenario)
    return data


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


def validate_file(path: str | Path, sets: list[str] | tuple[str, ...] = ()
                  ) -> tuple[str, BaseModel]:
    """Validate any spec file, with ``--set`` overrides applied; returns (kind, spec)."""
    data = read_yaml(path)
    kind = detect_kind(data)
    if kind == "scenario":
        return kind, load_scenario(path, sets)
    if sets and isinstance(data, dict):
        data = _with_file(lambda: apply_overrides(data, parse_set(sets)), path)
    if kind == "topology":
        return kind, validate_as(TopologySpec, data, file=str(path))
    if kind == "model":
        return kind, validate_as(MoEModelSpec, data, file=str(path))
    if kind == "sweep":
        from moesim.specs.sweep import load_sweep

        return kind, load_sweep(path)
    raise SpecError("cannot tell what this file is: a topology has 'tiers', a model "
                    "'num_layers', a scenario 'workload', a sweep 'axes'", file=str(path))
