"""Chrome trace export: event fields, units, metadata and no overlap on one thread."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from report_fixture_result import make_result

from moesim.report import chrome_trace, chrome_trace_json
from moesim.results.schema import SimulationResult, TraceEventResult


def _complete(trace: dict) -> list[dict]:
    return [e for e in trace["traceEvents"] if e["ph"] == "X"]


def assert_valid_chrome_trace(trace: dict) -> None:
    """Fields of the Chrome trace event format, and per-thread intervals that never overlap."""
    assert isinstance(trace["traceEvents"], list)
    named_threads = set()
    for e in trace["traceEvents"]:
        assert e["ph"] in ("X", "M")
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int)
        assert isinstance(e["name"], str)
        if e["ph"] == "M":
            assert e["name"] in ("process_name", "thread_name", "process_sort_index",
                                 "thread_sort_index")
            if e["name"] == "thread_name":
                named_threads.add((e["pid"], e["tid"]))
        else:
            assert e["dur"] >= 0 and e["ts"] >= 0 and isinstance(e["args"], dict)
    by_thread: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for e in _complete(trace):
        by_thread[(e["pid"], e["tid"])].append(e)
    assert set(by_thread) <= named_threads
    for events in by_thread.values():
        events.sort(key=lambda e: e["ts"])
        for a, b in zip(events, events[1:], strict=False):
            assert b["ts"] >= a["ts"] + a["dur"], (a, b)


def test_fixture_trace_is_valid_and_complete(result: SimulationResult) -> None:
    trace = json.loads(chrome_trace_json(result))
    assert_valid_chrome_trace(trace)
    assert len(_complete(trace)) == len(result.trace) == 21


def test_microseconds_names_and_args(result: SimulationResult) -> None:
    trace = chrome_trace(result)
    ev = [e for e in _complete(trace) if e["name"] == "dispatch mb1"]
    pp0 = ev[0] if ev[0]["pid"] == 1 else ev[1]
    # pp0 mb1 dispatch starts at 150 + 40 = 190 ms = 190000 us and lasts 20 ms
    assert pp0["ts"] == 190_000.0 and pp0["dur"] == 20_000.0
    assert pp0["cat"] == "ep_dispatch" and pp0["args"] == {"bytes": 8e6, "group": "ep"}


def test_one_process_per_rank_class_one_thread_per_stream(result: SimulationResult) -> None:
    meta = [e for e in chrome_trace(result)["traceEvents"] if e["ph"] == "M"]
    procs = {e["pid"]: e["args"]["name"] for e in meta if e["name"] == "process_name"}
    assert procs == {1: "pp0 (x32 ranks)", 2: "pp1 (x32 ranks)"}
    threads = {(e["pid"], e["args"]["name"]) for e in meta if e["name"] == "thread_name"}
    # pp1's two overlapping pp sends (300-330 ms and 310-340 ms) need a second pp thread
    assert (2, "comm_pp #2") in threads and (1, "comm_pp #2") not in threads
    assert len([t for t in threads if t[0] == 1]) == 4  # compute, comm_ep, comm_pp, comm_dp


def test_deterministic_bytes(result: SimulationResult) -> None:
    assert chrome_trace_json(result) == chrome_trace_json(make_result())


_interval = st.tuples(st.integers(0, 3), st.floats(0.0, 1.0), st.floats(0.0, 0.2))


@settings(max_examples=60, deadline=None)
@given(st.lists(_interval, min_size=1, max_size=40))
def test_random_overlaps_are_split_without_losing_time(items: list) -> None:
    events = [TraceEventResult(rank_class=f"pp{s % 2}", stream=["compute", "comm_ep"][s // 2],
                               name=f"op{i}", kind="k", start_s=t, duration_s=d)
              for i, (s, t, d) in enumerate(items)]
    trace = json.loads(chrome_trace_json(make_result(trace=events)))
    assert_valid_chrome_trace(trace)
    out = _complete(trace)
    assert len(out) == len(events)
    # clipping only touches slivers up to the 2 ns tolerance plus 1 ns rounding per event
    total_us = sum(e.duration_s for e in events) * 1e6
    assert abs(sum(e["dur"] for e in out) - total_us) <= 3e-3 * len(events)


def test_float_noise_touching_ops_stay_on_one_thread() -> None:
    # From the engine's default-scenario trace: A ends 1.108216400502 s, B starts at
    # 1.1082164005 s (2 ps earlier); rounded to ns that is a 1 ns overlap, which is noise.
    events = [TraceEventResult(rank_class="pp0", stream="compute", name="A", kind="k",
                               start_s=1.10820057065, duration_s=1.5829852151e-05),
              TraceEventResult(rank_class="pp0", stream="compute", name="B", kind="k",
                               start_s=1.1082164005, duration_s=1.8e-4)]
    trace = chrome_trace(make_result(trace=events))
    assert_valid_chrome_trace(trace)
    assert {e["tid"] for e in _complete(trace)} == {1}
    b = [e for e in _complete(trace) if e["name"] == "B"][0]
    assert b["ts"] == pytest.approx(1_108_216.401)  # clipped to A's end (1108200.571 + 15.830)
