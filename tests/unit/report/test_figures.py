"""Figures from the fixed result: titles, units in axis titles, numbers derived by hand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from report_fixture_result import make_result

from moesim.report import (
    fig_breakdown,
    fig_dispatch_traffic,
    fig_expert_load,
    fig_headline,
    fig_links,
    fig_memory,
    fig_timeline,
    fig_tokens_per_rank,
)
from moesim.report.figures_moe import busiest_links, tokens_per_ep_rank
from moesim.report.figures_step import breakdown_colors, breakdown_segments, headline_rows
from moesim.report.timeline import timeline_bars
from moesim.results.schema import SimulationResult, TraceEventResult


def test_headline_values(result: SimulationResult) -> None:
    shown = {r.metric: r.display for r in headline_rows(result)}
    assert shown["step_time_s"] == "500.00 ms"  # 0.5 s
    assert shown["tokens_per_s"] == "524,288 tokens/s"
    assert shown["mfu"] == "40.0 %"
    # tightest class is pp0: 80 - (40 + 10 + 20) = 10 GiB
    assert shown["min_memory_headroom_bytes"] == "10.00 GiB on pp0 (fits)"
    assert shown["drop_fraction"] == "1.00 %"
    cells = fig_headline(result).data[0].cells.values
    assert "500.00 ms" in cells[1] and "MFU" in cells[0]


def test_breakdown_stack_sums_to_step(result: SimulationResult) -> None:
    segs = breakdown_segments(result)
    # zero parts (dp exposed comm, optimizer, other) are left out
    assert [s for s, _ in segs] == ["compute: attention", "compute: experts",
                                    "exposed comm: ep_combine", "exposed comm: ep_dispatch",
                                    "pipeline bubble", "imbalance wait"]
    fig = fig_breakdown(result)
    shares = [t for t in fig.data if t.y[0] == "step"]
    ranked = [t for t in fig.data if t.name == "buckets"][0]
    # 160 + 200 + 40 + 40 + 50 + 10 ms = 500 ms = step_time_s; shares 32 + 40 + 8 + 8 + 10 + 2 %
    assert sum(ranked.x) == pytest.approx(500.0)
    assert [t.x[0] for t in shares] == pytest.approx([32.0, 40.0, 8.0, 8.0, 10.0, 2.0])
    assert fig.layout.barmode == "stack"
    # ranked longest first, each bar labelled with its ms and its % of the step
    assert list(ranked.y)[:2] == ["compute: experts", "compute: attention"]
    assert list(ranked.text)[:2] == ["200.0 ms · 40.0%", "160.0 ms · 32.0%"]
    assert len(set(ranked.marker.color)) == len(segs)  # no colour repeats
    assert "(ms)" in fig.layout.xaxis2.title.text and "(%)" in fig.layout.xaxis.title.text


def test_breakdown_colours_stay_distinct_for_many_buckets() -> None:
    labels = ([f"compute: k{i}" for i in range(12)] + [f"exposed comm: c{i}" for i in range(8)]
              + ["pipeline bubble", "imbalance wait", "host wait", "optimizer", "other"])
    assert len(set(breakdown_colors(labels).values())) == len(labels)


def test_memory_stacks_gib_with_hbm_line(result: SimulationResult) -> None:
    fig = fig_memory(result)
    bars = {t.name: list(t.y) for t in fig.data if t.type == "bar"}
    assert bars["weights"] == [40.0, 40.0] and bars["activations"] == [20.0, 12.0]
    hbm = [t for t in fig.data if t.name == "HBM capacity"][0]
    assert list(hbm.y) == [80.0, 80.0]
    assert "(GiB)" in fig.layout.yaxis.title.text


def test_expert_load_heatmap(result: SimulationResult) -> None:
    fig = fig_expert_load(result)
    z = np.asarray(fig.data[0].z)
    assert z.shape == (4, 8)
    assert z[3, 0] == 250.0 and z[3, 1] == 100.0  # 100 + 50 * 3
    # hottest expert 250 over mean (8*100 + 50*(0+1+2+3)) / 32 = 109.375 -> 2.29x
    assert "2.29x" in fig.layout.title.text
    assert fig.layout.yaxis.title.text == "MoE layer index"


def test_tokens_per_ep_rank_sums_expert_blocks() -> None:
    # EP8 over 8 experts: one expert per rank, so the per-rank matrix is the expert matrix.
    r = make_result()
    per_rank = tokens_per_ep_rank(r)
    assert per_rank.shape == (4, 8) and per_rank[2, 0] == 200.0
    # EP4: experts (0,1) -> rank 0; layer 3 gives 250 + 100 = 350 tokens.
    r4 = r.model_copy(update={"parallelism": {"expert_parallel_degree": 4}})
    assert tokens_per_ep_rank(r4)[3].tolist() == [350.0, 200.0, 200.0, 200.0]
    r2 = r.model_copy(update={"parallelism": {"ep": 2}})  # the key the engine writes
    assert tokens_per_ep_rank(r2)[1].tolist() == [450.0, 400.0]  # 150 + 3 * 100, 4 * 100
    fig = fig_tokens_per_rank(r)
    assert "(tokens)" in fig.layout.yaxis.title.text
    assert fig.layout.xaxis.title.text == "EP rank"


def test_dispatch_heatmap_in_mb(result: SimulationResult) -> None:
    fig = fig_dispatch_traffic(result)
    z = np.asarray(fig.data[0].z)
    assert z[2, 5] == pytest.approx(7.0)  # (i + j) MB
    # sum_{i,j<8} (i + j) = 2 * 8 * 28 = 448 MB
    assert "448.0 MB in total" in fig.layout.title.text
    assert fig.data[0].colorbar.title.text == "MB"


def test_links_busiest_per_tier(result: SimulationResult) -> None:
    top = busiest_links(result)
    nvl = [x.link for x in top if x.tier == "nvlink"]
    assert len(nvl) == 10 and nvl[0] == "gpu11-nvswitch" and "gpu0-nvswitch" not in nvl
    fig = fig_links(result)
    ib = [t for t in fig.data if t.name == "infiniband"][0]
    assert list(ib.x) == pytest.approx([40.0, 30.0, 20.0])  # 0.2 + 0.1 i, busiest first
    assert "(% of step time)" in fig.layout.xaxis.title.text
    # node2: 2 GB in the 0.5 s step = 4 GB/s mean of its 50 GB/s
    assert ib.text[0] == "40.0% · 4.0 of 50 GB/s"
    # the axis fits the data: the busiest link (gpu11, 55 %) plus room for its label
    assert list(fig.layout.xaxis.range) == pytest.approx([0.0, 55.0 * 1.45])


def test_links_axis_fits_small_utilizations(result: SimulationResult) -> None:
    quiet = [x.model_copy(update={"utilization": x.utilization / 25}) for x in result.links]
    fig = fig_links(result.model_copy(update={"links": quiet}))
    assert fig.layout.xaxis.range[1] == pytest.approx(55.0 / 25 * 1.45)  # 2.2 % -> 3.19 %


def test_timeline_draws_every_interval(result: SimulationResult) -> None:
    fig = fig_timeline(result)
    segments = sum(int(np.isfinite(np.asarray(t.x, dtype=float)).sum()) // 2 for t in fig.data)
    assert segments == len(result.trace) == 21
    assert "(21 intervals; trace.json has every op (21))" in fig.layout.title.text
    assert "(ms)" in fig.layout.xaxis.title.text
    # lanes: pp0 {compute, comm_ep, comm_pp, comm_dp}, pp1 same -> 8 ticks
    assert list(fig.layout.yaxis.ticktext)[:4] == ["pp0 compute", "pp0 comm_ep",
                                                   "pp0 comm_pp", "pp0 comm_dp"]
    assert len(fig.layout.yaxis.ticktext) == 8


def _one_lane(kinds: list[str]) -> list[TraceEventResult]:
    """Op i of kind kinds[i] runs [2i, 2i + 1] ms on pp0's compute stream."""
    return [TraceEventResult(rank_class="pp0", stream="compute", name=f"op{i}", kind=k,
                             start_s=2e-3 * i, duration_s=1e-3) for i, k in enumerate(kinds)]


def test_timeline_bins_a_huge_trace_and_says_so() -> None:
    # 100 ops on one lane, 50 of kind a then 50 of kind b, span [0, 199] ms; 10 bins of 19.9
    # ms each. The a/b switch (99 -> 100 ms) falls in bin 5 = [99.5, 119.4] ms, which holds
    # only b ops, so the bars are a on [0, 99.5] ms and b on [99.5, 199] ms.
    bars = timeline_bars(_one_lane(["a"] * 50 + ["b"] * 50), max_intervals=10)
    assert bars.bin_s == pytest.approx(19.9e-3)
    assert [bars.kinds[k] for k in bars.kind] == ["a", "b"]
    assert bars.start_s.tolist() == pytest.approx([0.0, 99.5e-3])
    assert bars.duration_s.tolist() == pytest.approx([99.5e-3, 99.5e-3])
    fig = fig_timeline(make_result(trace=_one_lane(["a"] * 50 + ["b"] * 50)), max_intervals=10)
    assert "binned: 100 intervals in 19.90 ms bins" in fig.layout.title.text


_ops = st.lists(st.tuples(st.integers(0, 2), st.sampled_from("xyz"), st.floats(0, 1),
                         st.floats(1e-6, 0.1)), min_size=4, max_size=80)


@settings(max_examples=40, deadline=None)
@given(_ops.flatmap(lambda ops: st.tuples(st.just(ops), st.integers(3, len(ops) - 1))))
def test_binned_bars_fit_the_budget_and_never_overlap(case: tuple[list, int]) -> None:
    # budget < number of ops forces binning; 3 lanes at most, so every lane gets >= 1 bin
    items, budget = case
    events = [TraceEventResult(rank_class="pp0", stream=["compute", "comm_ep", "comm_dp"][s],
                               name="op", kind=k, start_s=t, duration_s=d)
              for s, k, t, d in items]
    bars = timeline_bars(events, max_intervals=budget)
    assert bars.bin_s is not None and bars.shown <= budget
    for lane in range(len(bars.lanes)):
        sel = np.flatnonzero(bars.lane == lane)
        ends = bars.start_s[sel] + bars.duration_s[sel]
        assert np.all(bars.start_s[sel][1:] >= ends[:-1] - 1e-12)


@pytest.mark.parametrize("builder", [fig_breakdown, fig_memory, fig_expert_load,
                                     fig_tokens_per_rank, fig_dispatch_traffic, fig_links,
                                     fig_timeline])
def test_empty_result_still_draws_a_figure(builder) -> None:
    empty = make_result(trace=[]).model_copy(update={
        "memory": [], "links": [], "routing": make_result().routing.model_copy(
            update={"layers": [], "dispatch_traffic_bytes": []}),
        "breakdown": make_result().breakdown.model_copy(update={
            "compute_s": {}, "exposed_communication_s": {}, "pipeline_bubble_s": 0.0,
            "imbalance_wait_s": 0.0})})
    fig = builder(empty)
    assert fig.layout.annotations and "no" in fig.layout.annotations[0].text


def test_headline_shows_the_dualpipe_split(result: SimulationResult) -> None:
    b = result.breakdown.model_copy(update={"pipeline_phases_s": {
        "forward": 0.010, "backward": 0.020, "weight": 0.005, "overlapped": 0.400}})
    shown = {r.metric: r.display for r in headline_rows(result.model_copy(update={"breakdown": b}))}
    assert shown["pipeline_forward_s"] == "10.00 ms"
    assert shown["pipeline_overlapped_s"] == "400.00 ms"
    plain = {r.metric for r in headline_rows(result)}
    assert "pipeline_forward_s" not in plain  # only DualPipe results carry the split


@pytest.mark.parametrize("builder", [fig_breakdown, fig_memory, fig_expert_load,
                                     fig_tokens_per_rank, fig_dispatch_traffic, fig_links,
                                     fig_timeline])
def test_every_axis_is_titled(result: SimulationResult, builder) -> None:
    """Every drawn axis says what it measures; value axes say their unit in parentheses."""
    layout = builder(result).layout
    axes = [k for k in layout.to_plotly_json() if k.startswith(("xaxis", "yaxis"))]
    assert axes
    for key in axes:
        axis = layout[key]
        if axis.visible is False or axis.showticklabels is False:
            continue
        text = axis.title.text or ""
        assert text, f"{builder.__name__}: {key} has no title"
        categorical = any(w in text for w in ("index", "rank", "class", "link", "bucket"))
        assert categorical or "(" in text, f"{builder.__name__}: {key} {text!r} has no unit"
