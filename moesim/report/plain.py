"""Figures as plain data: plotly.js figure JSON built from lists and numpy arrays.

Building a ``plotly.graph_objects.Figure`` validates every property it is given and copies
the template into every figure; for the run report that was most of its time. The run
report's figures are therefore built as the dicts (``{"data": [...], "layout": {...}}``)
that plotly's validation makes of them: the report tests validate every one with plotly
(:func:`to_figure`) and assert that validation changes nothing. A page writes them with
:func:`figure_div` through the json module's C encoder: numpy arrays as plotly.js typed
arrays (base64, as plotly itself sends them; the builders give axis ranges, which plotly
never encodes, as lists), every other value as JSON.

:class:`PageLook` holds what every figure of one page shares (the layout template), read
once per page.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import plotly.graph_objects as go

Figure = dict[str, Any]

TEMPLATE = "plotly_white"

# numpy dtype -> plotly.js typed-array dtype
_TYPED = {"int8": "i1", "uint8": "u1", "int16": "i2", "uint16": "u2", "int32": "i4",
          "uint32": "u4", "float32": "f4", "float64": "f8"}
# integer arrays go as the narrowest of these that holds their values (as plotly sends them)
_NARROW = {"int64": (np.int8, np.int16, np.int32), "uint64": (np.uint8, np.uint16, np.uint32)}
# characters a JSON string inside <script> must not hold as they are
_UNSAFE = (("<", "\\u003c"), (">", "\\u003e"), ("/", "\\u002f"), ("\u2028", "\\u2028"),
           ("\u2029", "\\u2029"))


@dataclass(frozen=True)
class PageLook:
    """What every figure of one page shares: the layout template (plotly's, as JSON)."""

    template: dict[str, Any]

    @classmethod
    def load(cls, name: str = TEMPLATE) -> PageLook:
        """plotly's template ``name`` as JSON: the file plotly ships, read as it is (what
        plotly's own template object holds), else from plotly's template registry."""
        spec = importlib.util.find_spec("plotly")
        roots = spec.submodule_search_locations if spec is not None else None
        for root in roots or ():
            path = Path(root) / "package_data" / "templates" / f"{name}.json"
            if path.is_file():
                return cls(json.loads(path.read_text(encoding="utf-8")))
        import plotly.io as pio

        return cls(pio.templates[name].to_plotly_json())


def layout(title: str, height_px: int = 450, *, width_px: int, margin: dict[str, int] | None
           = None, **first: Any) -> dict[str, Any]:
    """A figure layout: the figure's own keys (``first``), then the common title, margin,
    legend and size (what :func:`moesim.report.style.base_layout` sets)."""
    return {**first, "title": {"text": title, "x": 0.01, "xanchor": "left"},
            "margin": margin or {"l": 90, "r": 30, "t": 70, "b": 60},
            "legend": {"orientation": "v"}, "height": height_px, "width": width_px}


def empty(title: str, message: str, *, width_px: int) -> Figure:
    """A drawn figure that says why there is no data (``style.empty_figure``'s)."""
    note = {"font": {"size": 16}, "showarrow": False, "text": message, "x": 0.5,
            "xref": "paper", "y": 0.5, "yref": "paper"}
    return {"data": [], "layout": layout(title, 220, width_px=width_px, annotations=[note],
                                         xaxis={"visible": False}, yaxis={"visible": False})}


def axis_title(text: str, **more: Any) -> dict[str, Any]:
    return {"title": {"text": text}, **more}


def colorscale(colors: list[str]) -> list[list[Any]]:
    """A named plotly colour sequence as the [position, colour] list plotly makes of it."""
    last = len(colors) - 1
    return [[(1.0 * i) / (1.0 * last), c] for i, c in enumerate(colors)]


def stacked_domains(fractions: list[float], spacing: float) -> list[list[float]]:
    """[start, end] paper fractions of rows stacked top to bottom, one column, ``spacing``
    between rows, heights in proportion to ``fractions`` (make_subplots' row domains)."""
    total = float(sum(fractions))
    up = [(1.0 - spacing * (len(fractions) - 1)) * (f / total) for f in reversed(fractions)]
    out = []
    for i, h in enumerate(up):  # bottom row first: below it i rows and i spacings
        start = sum(up[:i]) + i * spacing
        out.append([min(max(start, 0.0), 1.0), min(max(start + h, 0.0), 1.0)])
    return out[::-1]


def to_figure(fig: Figure) -> go.Figure:
    """The plotly Figure of ``fig`` (validated by plotly), with the report template."""
    import plotly.graph_objects as go
    import plotly.io as pio

    return go.Figure(data=fig["data"],
                     layout={"template": pio.templates[TEMPLATE], **fig["layout"]})


def _typed(a: np.ndarray) -> Any:
    """A numpy array as plotly.js reads it: a typed array (dtype, base64 bytes, shape) for
    numbers, a list otherwise."""
    if a.size == 0:
        return []
    name = a.dtype.name
    if name in _NARROW:
        lo, hi = a.min(), a.max()
        for t in _NARROW[name]:
            info = np.iinfo(t)
            if info.min <= lo and hi <= info.max:
                a = a.astype(t)
                break
        name = a.dtype.name
    if name not in _TYPED:
        return a.tolist()
    out = {"dtype": _TYPED[name], "bdata": base64.b64encode(np.ascontiguousarray(a)).decode(
        "ascii")}
    if a.ndim > 1:
        out["shape"] = ", ".join(str(n) for n in a.shape)
    return out


def _encode(o: Any) -> Any:
    """What the JSON encoder cannot write itself: numpy arrays (see :func:`_typed`), numpy
    scalars."""
    if isinstance(o, np.ndarray):
        return _typed(o)
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def _finite(obj: Any) -> Any:
    """``obj`` with NaN and infinite floats as None (JSON has no NaN; plotly.js reads null)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def to_json(obj: Any) -> str:
    """Compact JSON of figure data, safe inside a ``<script>`` element."""
    try:
        text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                          default=_encode)
    except ValueError:  # a NaN or an infinity somewhere: null, as plotly writes them
        text = json.dumps(_finite(obj), separators=(",", ":"), ensure_ascii=False,
                          default=_encode)
    for bad, good in _UNSAFE:
        if bad in text:
            text = text.replace(bad, good)
    return text


def _px(v: Any) -> str:
    return f"{v}px" if isinstance(v, (int, float)) else str(v)


def figure_div(fig: Figure, div_id: str, look: PageLook, config: dict[str, Any]) -> str:
    """``fig`` as a ``<div>`` that draws it with the page's plotly.js (as plotly's to_html
    with ``full_html=False, include_plotlyjs=False`` lays it out)."""
    lay = fig["layout"]
    size = look.template.get("layout", {})
    width = _px(lay.get("width", size.get("width", "100%")))
    height = _px(lay.get("height", size.get("height", "100%")))
    data = to_json(fig["data"])
    lay_json = to_json({"template": look.template, **lay})
    # the element id is moesim's own (fig-...), never user text
    return (f'<div style="height:{height}; width:{width};">'
            f'<div id="{div_id}" class="plotly-graph-div" style="height:100%; width:100%;">'
            f'</div><script>window.PLOTLYENV=window.PLOTLYENV || {{}};'
            f'if (document.getElementById("{div_id}")) {{Plotly.newPlot("{div_id}", {data}, '
            f'{lay_json}, {json.dumps(config)})}};</script></div>')
