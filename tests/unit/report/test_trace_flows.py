"""Pipeline flow arrows of trace.json: the numpy pass finds the arrows the row-by-row rule
finds (first op of the receiving chunk; the send, else the last-ending op, of the sending)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from report_fixture_result import make_result

from moesim.engine import Simulation
from moesim.report.trace import _flows, _layout
from moesim.specs.loader import load_scenario

ROOT = Path(__file__).resolve().parents[3]


def reference_flows(trace, a):  # noqa: ANN001, ANN202 - the rule, one row at a time
    if not trace.phases:
        return []
    phase_of = [tuple(p.split(":")) for p in trace.phases]
    is_send = np.array([s == "comm_pp" for _, s in trace.lanes], dtype=bool)[a["lane"]]
    rc_of = [rc for rc, _ in trace.lanes]
    first, last, send = {}, {}, {}
    start, end = a["start_s"], a["start_s"] + a["duration_s"]
    rows = np.flatnonzero((a["phase"] >= 0) & (a["micro_batch"] >= 0))
    for i in rows[np.argsort(start[rows], kind="stable")].tolist():
        ph, chunk = phase_of[a["phase"][i]]
        key = (ph, int(chunk), int(a["micro_batch"][i]))
        if is_send[i]:
            send[key] = i
            continue
        first.setdefault(key, i)
        if key not in last or end[i] >= end[last[key]]:
            last[key] = i
    out = []
    for (ph, chunk, mb), dst in sorted(first.items()):
        if ph not in ("forward", "backward"):
            continue
        prev = chunk - 1 if ph == "forward" else chunk + 1
        src = send.get((ph, prev, mb), last.get((ph, prev, mb)))
        if src is not None and rc_of[a["lane"][src]] != rc_of[a["lane"][dst]]:
            out.append((src, dst))
    return out


@pytest.fixture(scope="module")
def engine_result():
    spec = load_scenario(ROOT / "scenarios" / "default.yaml", ())
    return Simulation(spec, fidelity="des").run()


@pytest.mark.parametrize("which", ["engine", "fixture"])
def test_flows_are_the_row_by_row_rule(which: str, engine_result) -> None:
    result = engine_result if which == "engine" else make_result()
    a = result.trace.arrays()
    got = _flows(result.trace, a, _layout(result, a))
    assert got == reference_flows(result.trace, a)
    if which == "engine":
        assert len(got) > 100  # interleaved 1F1B over PP4: hand-offs between stages
