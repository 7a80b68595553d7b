"""Plan and sweep pages: the figures' numbers and labels, the tables, the shared plotly.js."""

from __future__ import annotations

from pathlib import Path

import pytest
from plan_paths import FAKE, FAKE_MEMORY, MIXTRAL

from moesim.plan.evaluate import Backend
from moesim.plan.figures import (
    fig_pareto,
    fig_sweep_parallel,
    fig_sweep_scatter,
    render_plan_html,
    render_sweep_html,
    value_label,
    write_plan_html,
    write_sweep_html,
)
from moesim.plan.search import plan_layouts
from moesim.plan.sweep import run_sweep
from moesim.specs.loader import load_scenario
from moesim.specs.sweep import load_sweep

AXES = ["parallelism.expert_parallel_degree", "parallelism.micro_batch_size"]


@pytest.fixture(scope="module")
def plan_result():
    return plan_layouts(load_scenario(MIXTRAL), 64, backend=Backend(FAKE, FAKE_MEMORY),
                        analytic_budget=25, des_top=2)


@pytest.fixture
def records(mixtral_sweep: Path, tmp_path: Path) -> list[dict]:
    # EP 1, 2, 3, 4, 8 x MBS 1, 2 with the fake engine: EP 1 infeasible, EP 3 invalid.
    return run_sweep(load_sweep(mixtral_sweep), mixtral_sweep, tmp_path / "o",
                     evaluator=FAKE).records


def test_value_labels_are_readable() -> None:
    assert value_label(None) == "null" and value_label(True) == "true"
    assert value_label(1.0) == "1" and value_label(1.25) == "1.25"
    assert value_label({"kind": "zipf", "exponent": 0.5}) == "zipf exponent=0.5"
    assert value_label({"kind": "balanced"}) == "balanced"


def test_pareto_axes_have_units_and_the_best_is_named(plan_result) -> None:
    fig = fig_pareto(plan_result)
    assert fig.layout.xaxis.title.text == "throughput (tokens/s)"
    assert "(GiB)" in fig.layout.yaxis.title.text
    assert f"#1 {plan_result.best.layout.label}" in fig.layout.title.text
    labels = [t for tr in fig.data if tr.mode == "markers+text" for t in tr.text]
    assert {f"#{k}" for k in range(1, 11)} <= set(labels)  # the best ten numbered
    assert {tr.name for tr in fig.data} == {"Pareto front", "layouts (analytic)",
                                            "layouts (DES)"}


def test_plan_page_table_beside_the_plot(plan_result, tmp_path: Path) -> None:
    page = render_plan_html(plan_result)
    assert page.count("<tr>") - page.count("<thead><tr>") == len(plan_result.ranked) + len(
        plan_result.excluded)
    assert "class='row'" in page and "table class='sortable' id='ranked'" in page
    path = write_plan_html(plan_result, tmp_path / "p" / "plan.html")
    assert (path.parent / "plotly.min.js").exists()


def test_sweep_parallel_shows_infeasible_points(records) -> None:
    fig = fig_sweep_parallel(records, AXES)
    pc = fig.data[0]
    # EP 2, 4, 8 ok (6 points) and EP 1 infeasible (2): 8 lines; EP 3 invalid is not drawn
    assert len(pc.dimensions[0].values) == 8 and sorted(pc.line.color) == [0, 0] + [1] * 6
    assert [d.label for d in pc.dimensions] == [
        "expert_parallel_degree", "micro_batch_size", "throughput (tokens/s)", "step time (s)",
        "peak memory (GiB)"]
    assert list(pc.dimensions[0].tickvals) == [1, 2, 4, 8]
    assert "2 infeasible (red), 2 invalid" in fig.layout.title.text


def test_categorical_axis_labels_are_not_json() -> None:
    recs = [{"index": i, "point_id": str(i), "status": "ok", "reason": "", "error": "",
             "overrides": {"routing.load": load, "routing.capacity_factor": cf},
             "metrics": {"tokens_per_s": 1.0 + i, "step_time_s": 1.0, "peak_bytes": 1e9}}
            for i, (load, cf) in enumerate([({"kind": "balanced"}, None),
                                            ({"kind": "zipf", "exponent": 1.0}, 1.25)])]
    dims = fig_sweep_parallel(recs, ["routing.load", "routing.capacity_factor"]).data[0].dimensions
    assert list(dims[0].ticktext) == ["balanced", "zipf exponent=1"]
    assert list(dims[1].ticktext) == ["null", "1.25"] and list(dims[1].values) == [0, 1]


def test_sweep_scatter_capacity_line(records) -> None:
    fig = fig_sweep_scatter(records)
    assert {t.name for t in fig.data} == {"ok (6)", "infeasible (2)"}
    # the fake topology's devices hold 79.65 GiB: peak + headroom on every point
    assert fig.layout.shapes[0].x0 == pytest.approx(79.65, abs=1e-3)
    assert fig.layout.xaxis.title.text == "peak memory per device (GiB)"


def test_sweep_page_lists_invalid_points(records, tmp_path: Path) -> None:
    page = render_sweep_html(records, AXES, "mixtral-ep")
    assert page.count("<tr class='bad'>") == 4  # 2 invalid + 2 infeasible
    assert "must divide" in page and ".yaml: parallelism" not in page  # file prefix dropped
    path = write_sweep_html(records, AXES, tmp_path / "s" / "sweep.html", "mixtral-ep")
    assert (path.parent / "plotly.min.js").exists()
