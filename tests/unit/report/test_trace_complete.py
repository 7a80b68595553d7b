"""The engine's trace has every op: the default scenario's DES step, through trace.json.

Properties, not magic numbers: as many complete events as the engine ran ops, the last one
ending at the step time, every event with args naming the path that priced it, one flow
arrow per pipeline hand-off with both ends on events, and result.json carrying the same trace.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moesim.engine import Simulation
from moesim.report.timeline import trace_claim
from moesim.report.trace import assign_rows, write_trace_file
from moesim.results.schema import SimulationResult
from moesim.results.trace import TraceBuilder
from moesim.specs.loader import load_scenario

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def des() -> tuple[Simulation, SimulationResult]:
    sim = Simulation(load_scenario(ROOT / "scenarios" / "default.yaml"), fidelity="des")
    return sim, sim.run()


def test_every_op_is_in_the_trace(des: tuple[Simulation, SimulationResult]) -> None:
    sim, result = des
    assert result.trace.complete
    assert result.trace.events == result.trace.ops_simulated == sim.ops_simulated
    assert result.trace.end_s == pytest.approx(result.step_time_s, rel=1e-9)


def test_trace_file_holds_every_op_with_args(des: tuple[Simulation, SimulationResult],
                                             tmp_path: Path) -> None:
    _, result = des
    info = write_trace_file(result, tmp_path / "trace.json")
    data = json.loads(info.path.read_text(encoding="utf-8"))
    ops = [e for e in data["traceEvents"] if e["ph"] == "X"]
    assert len(ops) == info.events == result.trace.events
    assert data["otherData"]["complete"] is True
    assert all(e["args"] and e["args"]["source"] in ("measured", "derived", "roofline",
                                                     "network", "model") for e in ops)
    end_us = max(e["ts"] + e["dur"] for e in ops)
    assert end_us == pytest.approx(result.step_time_s * 1e6, rel=0.01)
    # micro-batch ops say which micro-batch and phase; communication names its group
    assert any("micro_batch" in e["args"] and "phase" in e["args"] for e in ops)
    assert all("group" in e["args"] for e in ops if e["args"]["source"] == "network")


def test_pipeline_sends_have_flow_arrows(des: tuple[Simulation, SimulationResult],
                                         tmp_path: Path) -> None:
    _, result = des
    info = write_trace_file(result, tmp_path / "trace.json")
    events = json.loads(info.path.read_text(encoding="utf-8"))["traceEvents"]
    starts = {e["id"]: e for e in events if e["ph"] == "s"}
    ends = {e["id"]: e for e in events if e["ph"] == "f"}
    assert info.flows > 0 and starts.keys() == ends.keys() and len(starts) == info.flows
    ops = [e for e in events if e["ph"] == "X"]

    def on_event(f: dict) -> dict:  # the latest-starting slice holding it (one may end there)
        return max((e for e in ops if e["pid"] == f["pid"] and e["tid"] == f["tid"]
                    and e["ts"] <= f["ts"] <= e["ts"] + e["dur"]), key=lambda e: e["ts"])

    for fid in list(starts)[:50]:
        src, dst = on_event(starts[fid]), on_event(ends[fid])
        assert src["pid"] != dst["pid"]  # from one rank class to another
        assert src["args"]["micro_batch"] == dst["args"]["micro_batch"]
        assert src["ts"] <= dst["ts"]


def test_result_json_round_trips_the_trace(des: tuple[Simulation, SimulationResult]) -> None:
    _, result = des
    again = SimulationResult.from_json(result.to_json())
    assert again.trace == result.trace
    assert again.trace.events_list()[:5] == result.trace.events_list()[:5]


def test_a_cut_trace_says_how_much_it_holds() -> None:
    b = TraceBuilder()
    b.add("pp0", "compute", "a", "k", 0.0, 0.5, {"source": "roofline"})
    trace = b.build(ops_simulated=3)
    assert not trace.complete and trace.events == 1
    assert trace_claim(trace) == "trace.json has 1 of the step's 3 ops, to 500 ms"


def test_rows_split_only_where_intervals_overlap() -> None:
    import numpy as np

    rows, ts, dur = assign_rows(np.array([0.0, 10.0, 15.0, 30.0]),
                                np.array([10.001, 20.0, 25.0, 40.0]))
    assert rows.tolist() == [0, 0, 1, 0]  # 10.001 vs 10.0: a 1 ns sliver, clipped
    assert ts.tolist() == [0.0, 10.001, 15.0, 30.0] and dur[1] == pytest.approx(9.999)
