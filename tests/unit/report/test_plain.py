"""The run report's figures as plain data: plotly's validation changes none of them, and the
page writes them as plotly would send them (typed arrays, null for NaN, script-safe)."""

from __future__ import annotations

import json

import numpy as np
import plotly.io as pio
import pytest
from plotly.subplots import make_subplots
from report_fixture_result import make_result

from moesim.report import plain
from moesim.report.render import FIGURES
from moesim.report.timeline import timeline_spec
from moesim.results.schema import SimulationResult


def _empty() -> SimulationResult:
    base = make_result()
    return make_result(trace=[]).model_copy(update={
        "memory": [], "links": [],
        "routing": base.routing.model_copy(update={"layers": [], "dispatch_traffic_bytes": []}),
        "breakdown": base.breakdown.model_copy(update={
            "compute_s": {}, "exposed_communication_s": {}, "pipeline_bubble_s": 0.0,
            "imbalance_wait_s": 0.0})})


def _parsed(obj) -> object:
    return json.loads(plain.to_json(obj))


@pytest.mark.parametrize("which", ["fixture", "empty"])
@pytest.mark.parametrize("key", [key for key, _, _ in FIGURES])
def test_plotly_validation_changes_nothing(which: str, key: str) -> None:
    result = make_result() if which == "fixture" else _empty()
    spec = dict((k, b) for k, _, b in FIGURES)[key](result)
    validated = plain.to_figure(spec).to_dict()  # plotly's own typed arrays and template
    assert _parsed(validated["data"]) == _parsed(spec["data"])
    look = plain.PageLook.load()
    assert _parsed(validated["layout"]) == _parsed({"template": look.template, **spec["layout"]})


def test_binned_timeline_survives_validation_too() -> None:
    spec = timeline_spec(make_result(), max_intervals=6)
    assert "binned" in spec["layout"]["title"]["text"]
    assert _parsed(plain.to_figure(spec).to_dict()["data"]) == _parsed(spec["data"])


def test_the_template_is_plotlys() -> None:
    assert plain.PageLook.load().template == pio.templates[plain.TEMPLATE].to_plotly_json()


@pytest.mark.parametrize("fractions,spacing", [([44 / 566, 1 - 134 / 566], 90 / 566),
                                               ([44 / 150, 1 - 134 / 150], 90 / 150),
                                               ([1.0, 1.0], 0.1), ([3.0, 1.0, 2.0], 0.05)])
def test_stacked_domains_are_make_subplots_rows(fractions: list[float], spacing: float) -> None:
    fig = make_subplots(rows=len(fractions), cols=1, vertical_spacing=spacing,
                        row_heights=fractions)
    want = [list(fig.layout[f"yaxis{i + 1 if i else ''}"].domain) for i in range(len(fractions))]
    assert plain.stacked_domains(fractions, spacing) == want


def test_arrays_go_as_typed_arrays_and_nan_as_null() -> None:
    out = _parsed({"x": np.arange(3), "z": np.ones((2, 2)), "s": np.array(["a", "b"]),
                   "y": [1.0, float("nan")], "n": np.float64(2.5), "e": np.zeros(0)})
    assert out["x"]["dtype"] == "i1" and out["z"]["shape"] == "2, 2" and out["z"]["dtype"] == "f8"
    assert out["s"] == ["a", "b"] and out["y"] == [1.0, None] and out["n"] == 2.5
    assert out["e"] == []


def test_user_text_cannot_close_the_script() -> None:
    text = plain.to_json({"title": "</script><script>alert(1)</script>\u2028"})
    assert "<" not in text and ">" not in text and "\u2028" not in text
    assert json.loads(text)["title"] == "</script><script>alert(1)</script>\u2028"
    div = plain.figure_div({"data": [], "layout": plain.layout("</script>", width_px=100)},
                           "fig-x", plain.PageLook.load(), {"displaylogo": False})
    assert div.count("</script>") == 1 and 'id="fig-x"' in div and "width:100px" in div
