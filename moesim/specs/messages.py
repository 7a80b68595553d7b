"""Turn pydantic validation errors into one line: dotted path, value, and the fix."""

from __future__ import annotations

import difflib
import reprlib
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from moesim.specs import bounds
from moesim.specs.serving import UNION_TAGS as SERVING_TAGS
from moesim.specs.yamlsafe import shown_key

# DESIGN.md's unit list, as a hint appended where a field name looks like a unit mistake.
UNIT_HINT = ("units live in field names: _gb/_gib (memory), _gbyte_per_s (HBM, NVLink, ICI), "
             "_gbit_per_s (NICs), _tflops, _s/_ms/_us/_ns, _bytes")

# Suffixes people write, and the spelling DESIGN.md uses for the same unit (longest first).
_SUFFIX_FIXES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("_gbytes_per_s", ("_gbyte_per_s",)), ("_gb_per_s", ("_gbyte_per_s",)),
    ("_gbyte_s", ("_gbyte_per_s",)), ("_gb_s", ("_gbyte_per_s",)),
    ("_gbit_s", ("_gbit_per_s",)), ("_gbits", ("_gbit_per_s",)), ("_gbps", ("_gbit_per_s",)),
    ("_gbs", ("_gbyte_per_s",)), ("_tbps", ("_gbit_per_s",)), ("_mbps", ("_gbit_per_s",)),
    ("_bandwidth", ("_gbyte_per_s", "_gbit_per_s")), ("_bw", ("_gbyte_per_s", "_gbit_per_s")),
    ("_gigabytes", ("_gb",)), ("_gbytes", ("_gb",)), ("_tflop", ("_tflops",)),
    ("_usec", ("_us",)), ("_msec", ("_ms",)), ("_nsec", ("_ns",)), ("_seconds", ("_s",)),
    ("_sec", ("_s",)), ("_tb", ("_gb",)), ("_mb", ("_gb",)), ("_gb", ("_gib",)),
)

UNION_TAGS = {
    "nvswitch", "fat_tree", "torus", "dcn", "gqa", "mla", "gpipe", "1f1b", "interleaved_1f1b",
    "dualpipe", "direct", "hierarchical", "deepep", "top_k", "expert_choice", "hash", "balanced",
    "multinomial", "zipf", "dirichlet", "histogram", "str", "TopologySpec", "MoEModelSpec",
    "function-after[_check_tiers(), TopologySpec]", "function-after[_check(), MoEModelSpec]",
} | SERVING_TAGS


def dotted(loc: tuple[Any, ...]) -> str:
    """``loc`` as a dotted path, without the tags pydantic adds for tagged unions."""
    parts: list[str] = []
    for item in loc:
        if isinstance(item, str) and parts and item in UNION_TAGS:
            continue
        parts.append(str(item))
    return ".".join(parts)


def suggest_field(name: str, allowed: list[str]) -> tuple[str | None, bool]:
    """The allowed field ``name`` most likely means, and whether the mistake is a unit suffix."""
    low = name.lower()
    for bad, goods in _SUFFIX_FIXES:
        if low.endswith(bad):
            stem = low[: -len(bad)]
            for good in goods:
                if stem + good in allowed:
                    return stem + good, True
            close = difflib.get_close_matches(stem + goods[0], allowed, n=1, cutoff=0.6)
            if close:
                return close[0], True
    close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.5)
    return (close[0] if close else None), False


def model_at(model: type[BaseModel], loc: tuple[Any, ...], data: Any) -> type[BaseModel] | None:
    """The pydantic class that owns the last element of ``loc`` (to list its allowed fields)."""
    cls: Any = model
    node = data
    for item in loc[:-1]:
        if isinstance(item, int):
            node = node[item] if isinstance(node, list) and item < len(node) else None
            continue
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
            if not isinstance(node, dict):
                return None
            cls = _pick_union(cls, node)
        fields = cls.model_fields if isinstance(cls, type) and issubclass(cls, BaseModel) else {}
        field = fields.get(item)
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
    args = get_args(annotation)
    if not args:
        return annotation
    # tuple[X, ...] / list[X] / Annotated[Union, ...] / X | None
    models = [a for a in _flatten(args) if isinstance(a, type) and issubclass(a, BaseModel)]
    if len(models) == 1:
        return models[0]
    if models and isinstance(node, dict):
        return _pick_union(models, node)
    return models or annotation


def _flatten(args: tuple[Any, ...]) -> list[Any]:
    out: list[Any] = []
    for a in args:
        sub = get_args(a)
        out.extend(_flatten(sub) if sub else [a])
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


def format_error(model: type[BaseModel], exc: ValidationError, data: Any) -> tuple[str, str]:
    """(dotted field path, one-line message) for the first error of ``exc``."""
    errors = exc.errors(include_url=False)
    # A misspelt field also shows up as the real one "missing": report the misspelling.
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(err["loc"])
    path = dotted(loc)
    etype = err["type"]
    value = err.get("input")
    if etype == "extra_forbidden":
        return path, _unknown_field(model, loc, data, path)
    if etype == "missing":
        return path, f"{path} is required; add it"
    if etype in ("union_tag_invalid", "union_tag_not_found"):
        ctx = err.get("ctx", {})
        where = f"{path}.kind" if path else "kind"
        if etype == "union_tag_not_found":
            return path, f"{where} is required; valid: {ctx.get('expected_tags', '?')}"
        return path, (f"{where}={_short(ctx.get('tag', value))} is not a known kind; "
                      f"valid: {ctx.get('expected_tags', '?')}")
    msg = str(err["msg"]).removeprefix("Value error, ")
    shown = _short(value)
    where = f"{path}={shown}" if path else f"value {shown}"
    why = bounds.reason(path) if etype in _BOUND_ERRORS else None
    return path, f"{where}: {msg}" + (f" ({why})" if why else "")


# pydantic error types of a number above a field's upper bound (the reason is appended).
_BOUND_ERRORS = ("less_than_equal", "less_than")  # upper bounds: bounds.REASONS says why


def _short(value: Any) -> str:
    """A value as a message shows it: at most 60 characters, without walking all of a big or
    deeply nested value (``reprlib`` stops at a few items per level)."""
    if isinstance(value, dict):
        return "{...}"
    try:
        shown = _REPR.repr(value)
    except Exception:  # a value whose repr fails is still reported
        shown = f"<{type(value).__name__}>"
    return shown if len(shown) <= 60 else shown[:57] + "..."


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxstring, _REPR.maxother = 2, 6, 6, 58, 58
_REPR.maxlong = 40


def _unknown_field(model: type[BaseModel], loc: tuple[Any, ...], data: Any, path: str) -> str:
    try:
        owner = model_at(model, loc, data)
    except (KeyError, IndexError, TypeError, AttributeError):
        owner = None
    allowed = sorted(owner.model_fields) if owner else []
    name = str(loc[-1]) if loc else path
    close, unit_mistake = suggest_field(name, allowed)
    hint = f"; did you mean {close!r}?" if close else ""
    extra = f" ({UNIT_HINT})" if unit_mistake else ""
    return f"unknown field {_shown_path(loc)}{hint}{extra}{_listing(allowed)}"


def _shown_path(loc: tuple[Any, ...]) -> str:
    """The dotted path of an unknown field, its last key shown only if it looks like a field
    name (a key that is a line of some other file is not echoed)."""
    parent = dotted(loc[:-1])
    last = shown_key(loc[-1]) if loc else "''"
    if not parent:
        return last
    if last.startswith("'"):
        return repr(f"{parent}.{last[1:-1]}")
    return f"{last} under {parent!r}"


def _listing(allowed: list[str], limit: int = 200) -> str:
    """"; allowed fields here: a, b, ..." cut to about ``limit`` characters."""
    if not allowed:
        return ""
    shown: list[str] = []
    for name in allowed:
        if sum(len(x) + 2 for x in shown) + len(name) > limit:
            rest = len(allowed) - len(shown)
            return (f"; allowed fields here: {', '.join(shown)}, and {rest} more "
                    "(`moesim schema` lists them)")
        shown.append(name)
    return f"; allowed fields here: {', '.join(shown)}"
