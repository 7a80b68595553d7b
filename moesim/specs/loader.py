"""Load YAML specs, apply ``--set`` overrides, and turn every failure into one SpecError line."""

from __future__ import annotations

import copy
import difflib
import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from moesim.errors import SpecError
from moesim.specs.hardware import TopologySpec
from moesim.specs.model import MoEModelSpec
from moesim.specs.scenario import ScenarioSpec

T = TypeVar("T", bound=BaseModel)

# Suffixes a user may reach for; DESIGN.md's unit list says which one a field uses.
_UNIT_HINT = ("units live in field names: _gb/_gib (memory), _gbyte_per_s (HBM, NVLink, ICI), "
              "_gbit_per_s (NICs), _tflops, _s/_ms/_us/_ns")


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; a syntax error names the line and column."""
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"file not found: {p}; check the path (relative paths are resolved "
                        "against the file that names them)", file=str(p))
    try:
        text = p.read_text(encoding="utf-8")
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        what = (exc.problem or exc.context or "malformed YAML").strip()
        raise SpecError(f"malformed YAML at {where}: {what}", file=str(p)) from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise SpecError(f"malformed YAML: {exc}", file=str(p)) from None


def _dotted(loc: tuple[Any, ...]) -> str:
    # Drop the discriminator tags pydantic adds for tagged unions (e.g. 'fat_tree').
    parts: list[str] = []
    for item in loc:
        if isinstance(item, str) and parts and item in _UNION_TAGS:
            continue
        parts.append(str(item))
    return ".".join(parts)


_UNION_TAGS = {
    "nvswitch", "fat_tree", "torus", "dcn", "gqa", "mla", "gpipe", "1f1b", "interleaved_1f1b",
    "dualpipe", "direct", "hierarchical", "deepep", "top_k", "expert_choice", "hash", "balanced",
    "multinomial", "zipf", "dirichlet", "histogram", "str", "TopologySpec", "MoEModelSpec",
    "function-after[_check_tiers(), TopologySpec]", "function-after[_check(), MoEModelSpec]",
}


def _model_at(model: type[BaseModel], loc: tuple[Any, ...], data: Any) -> type[BaseModel] | None:
    """The pydantic class that owns the last element of ``loc`` (to list its allowed fields)."""
    cls: Any = model
    node = data
    for item in loc[:-1]:
        if isinstance(item, int):
            node = node[item] if isinstance(node, list) and item < len(node) else None
            continue
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
            if isinstance(node, dict):
                cls = _pick_union(cls, node)
            else:
                return None
        field = cls.model_fields.get(item) if isinstance(cls, type) else None
        if field is None:
            continue
        node = node.get(item) if isinstance(node, dict) else None
        cls = _unwrap(field.annotation, node)
    if isinstance(cls, type) and issubclass(cls, BaseModel):
        return cls
    if isinstance(node, dict):
        picked = _pick_union(cls, node)
        return picked if isinstance(picked, type) and issubclass(picked, BaseModel) else None
    return None


def _unwrap(annotation: Any, node: Any) -> Any:
    from typing import get_args

    args = get_args(annotation)
    if not args:
        return annotation
    # tuple[X, ...] / list[X] / Annotated[Union, ...] / X | None
    models = [a for a in _flatten(args) if isinstance(a, type) and issubclass(a, BaseModel)]
    if len(models) == 1:
        return models[0]
    if models and isinstance(node, dict):
        return _pick_union(models, node)
    if models:
        return models
    return annotation


def _flatten(args: tuple[Any, ...]) -> list[Any]:
    from typing import get_args

    out: list[Any] = []
    for a in args:
        sub = get_args(a)
        if sub:
            out.extend(_flatten(sub))
        else:
            out.append(a)
    return out


def _pick_union(candidates: Any, node: dict[str, Any]) -> Any:
    if not isinstance(candidates, list):
        return candidates
    kind = node.get("kind")
    for c in candidates:
        f = c.model_fields.get("kind")
        if f is not None and f.default == kind:
            return c
    return candidates[0] if candidates else None


def _format_error(model: type[BaseModel], exc: ValidationError, data: Any) -> tuple[str, str]:
    err = exc.errors(include_url=False)[0]
    loc = tuple(err["loc"])
    path = _dotted(loc)
    etype = err["type"]
    value = err.get("input")
    if etype == "extra_forbidden":
        owner = _model_at(model, loc, data)
        allowed = sorted(owner.model_fields) if owner else []
        name = str(loc[-1])
        close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        unitish = any(name.endswith(s) for s in ("gbps", "_gb", "_tb", "_bw", "bandwidth", "_mbps",
                                                  "_gbs", "_tbps", "_ms", "_us", "_s", "_flops"))
        extra = f" ({_UNIT_HINT})" if unitish and close else ""
        return path, (f"unknown field {path!r}{hint}{extra}; allowed fields here: "
                      f"{', '.join(allowed)}")
    if etype == "missing":
        return path, f"{path} is required; add it"
    if etype == "union_tag_invalid" or etype == "union_tag_not_found":
        ctx = err.get("ctx", {})
        return path, (f"{path}.kind={ctx.get('tag', value)!r} is not a known kind; "
                      f"valid: {ctx.get('expected_tags', '?')}")
    msg = err["msg"].removeprefix("Value error, ")
    shown = repr(value) if not isinstance(value, dict) else "{...}"
    if len(shown) > 60:
        shown = shown[:57] + "..."
    where = f"{path}={shown}" if path else f"value {shown}"
    return path, f"{where}: {msg}"


def validate_as(model: type[T], data: Any, file: str | None = None) -> T:
    """Validate ``data`` as ``model``; errors become one SpecError line."""
    if not isinstance(data, dict):
        raise SpecError(f"expected a mapping at the top level, got {type(data).__name__}", file=file)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        field, message = _format_error(model, exc, data)
        raise SpecError(message, file=file, field=field) from None


# --- overrides -------------------------------------------------------------------------------

def parse_set(items: list[str] | tuple[str, ...]) -> list[tuple[str, Any]]:
    """Parse ``path=value`` strings; the value is read as YAML (numbers, bools, lists, maps)."""
    out = []
    for item in items:
        if "=" not in item:
            raise SpecError(f"--set {item!r}: expected PATH=VALUE, e.g. "
                            "parallelism.expert_parallel_degree=16")
        path, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        out.append((path.strip(), value))
    return out


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted path in nested dicts/lists, creating dicts as needed."""
    keys = path.split(".")
    node: Any = data
    for i, key in enumerate(keys[:-1]):
        node = _descend(node, key, keys[i + 1], path)
    last = keys[-1]
    if isinstance(node, list):
        idx = _index(node, last, path)
        node[idx] = value
    else:
        node[last] = value


def _index(node: list[Any], key: str, path: str) -> int:
    if not key.isdigit() or int(key) >= len(node):
        raise SpecError(f"--set {path}: {key!r} is not an index of a list of {len(node)}")
    return int(key)


def _descend(node: Any, key: str, nxt: str, path: str) -> Any:
    if isinstance(node, list):
        return node[_index(node, key, path)]
    if not isinstance(node, dict):
        raise SpecError(f"--set {path}: {key!r} is inside a value that is not a mapping")
    if key not in node or node[key] is None:
        node[key] = {}
    return node[key]


def apply_overrides(data: dict[str, Any], overrides: list[tuple[str, Any]]) -> dict[str, Any]:
    out = copy.deepcopy(data)
    for path, value in overrides:
        set_path(out, path, value)
    return out


# --- resolution ------------------------------------------------------------------------------

def _resolve_ref(base: Path, ref: str) -> Path:
    p = Path(ref)
    return p if p.is_absolute() else (base / p)


def load_topology(path: str | Path, overrides: dict[str, Any] | None = None) -> TopologySpec:
    data = read_yaml(path)
    if overrides and isinstance(data, dict):
        data = apply_overrides(data, list(overrides.items()))
    return validate_as(TopologySpec, data, file=str(path))


def load_model(path: str | Path) -> MoEModelSpec:
    return validate_as(MoEModelSpec, read_yaml(path), file=str(path))


def load_scenario(path: str | Path, sets: list[str] | tuple[str, ...] = ()) -> ScenarioSpec:
    """Load a scenario, resolve its topology and model, apply ``--set``, check consistency."""
    from moesim.specs.checks import check_scenario

    p = Path(path)
    data = read_yaml(p)
    if not isinstance(data, dict):
        raise SpecError("expected a mapping at the top level", file=str(p))
    overrides = parse_set(sets)
    topo_sets = [(k.removeprefix("topology."), v) for k, v in overrides
                 if k.startswith("topology.") and isinstance(data.get("topology"), str)]
    model_sets = [(k.removeprefix("model."), v) for k, v in overrides
                  if k.startswith("model.") and isinstance(data.get("model"), str)]
    own_sets = [(k, v) for k, v in overrides
                if not ((k.startswith("topology.") and isinstance(data.get("topology"), str))
                        or (k.startswith("model.") and isinstance(data.get("model"), str)))]
    data = apply_overrides(data, own_sets)
    base = p.parent
    data = _embed(data, "topology", base, p, topo_sets, extra=data.get("topology_overrides"))
    data = _embed(data, "model", base, p, model_sets)
    for key in ("calibration",):
        if isinstance(data.get(key), str):
            ref = _resolve_ref(base, data[key])
            if not ref.is_file():
                raise SpecError(f"{key}={data[key]!r}: file not found; give a path relative to "
                                "the scenario file", file=str(p), field=key)
            data[key] = str(ref)
    load = (data.get("routing") or {}).get("load") if isinstance(data.get("routing"), dict) else None
    if isinstance(load, dict) and isinstance(load.get("path"), str):
        ref = _resolve_ref(base, load["path"])
        if not ref.is_file():
            raise SpecError(f"routing.load.path={load['path']!r}: file not found; give a path "
                            "relative to the scenario file", file=str(p), field="routing.load.path")
        load["path"] = str(ref)
    spec = validate_as(ScenarioSpec, data, file=str(p))
    try:
        check_scenario(spec)
    except SpecError as exc:
        raise exc.with_file(str(p)) from None
    return spec


def _embed(data: dict[str, Any], key: str, base: Path, scenario: Path,
           sets: list[tuple[str, Any]], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    ref = data.get(key)
    if isinstance(ref, str):
        target = _resolve_ref(base, ref)
        if not target.is_file():
            raise SpecError(f"{key}={ref!r}: referenced file not found (looked for "
                            f"{os.path.relpath(target)}); give a path relative to the scenario "
                            "file", file=str(scenario), field=key)
        sub = read_yaml(target)
        if not isinstance(sub, dict):
            raise SpecError("expected a mapping at the top level", file=str(target))
        overrides = list((extra or {}).items()) + sets
        sub = apply_overrides(sub, overrides)
        cls = TopologySpec if key == "topology" else MoEModelSpec
        data[key] = validate_as(cls, sub, file=str(target)).model_dump()
    elif isinstance(ref, dict) and key == "topology" and extra:
        data[key] = apply_overrides(ref, list(extra.items()))
    return data


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


def validate_file(path: str | Path) -> tuple[str, BaseModel]:
    """Validate any shipped spec file; returns (kind, spec)."""
    data = read_yaml(path)
    kind = detect_kind(data)
    if kind == "topology":
        return kind, validate_as(TopologySpec, data, file=str(path))
    if kind == "model":
        return kind, validate_as(MoEModelSpec, data, file=str(path))
    if kind == "scenario":
        return kind, load_scenario(path)
    if kind == "sweep":
        from moesim.specs.sweep import load_sweep

        return kind, load_sweep(path)
    raise SpecError("cannot tell what this file is: a topology has 'tiers', a model "
                    "'num_layers', a scenario 'workload', a sweep 'axes'", file=str(path))
