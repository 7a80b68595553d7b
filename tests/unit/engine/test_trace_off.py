"""``Simulation(trace=False)`` keeps no trace and no per-layer routing table, and every step
number is the one the traced run gives (the planner relies on it)."""

from __future__ import annotations

from pathlib import Path

from moesim.engine import Simulation
from moesim.engine.session import EngineSession
from moesim.specs.loader import load_scenario

ROOT = Path(__file__).resolve().parents[3]


def test_untraced_step_has_the_traced_numbers() -> None:
    sc = load_scenario(ROOT / "scenarios" / "default.yaml")
    full = Simulation(sc).run().model_dump(mode="json")
    bare = Simulation(sc, trace=False).run().model_dump(mode="json")
    assert full["trace"]["events"] > 0 and bare["trace"]["events"] == 0
    assert not bare["trace"]["complete"]
    assert full["routing"]["layers"] and not bare["routing"]["layers"]
    for key in ("trace", "routing"):
        full.pop(key)
        bare.pop(key)
    assert bare == full


def test_a_shared_session_gives_the_same_result() -> None:
    # Two layouts priced through one session, then each alone: equal results, and the second
    # run of the first layout reuses the session's program (one object).
    a = load_scenario(ROOT / "scenarios" / "default.yaml")
    b = load_scenario(ROOT / "scenarios" / "default.yaml", ["parallelism.micro_batch_size=2"])
    session = EngineSession()
    shared = [Simulation(s, fidelity="analytic", session=session).run() for s in (a, b)]
    alone = [Simulation(s, fidelity="analytic").run() for s in (a, b)]
    assert [r.model_dump() for r in shared] == [r.model_dump() for r in alone]
    one = Simulation(a, fidelity="analytic", session=session)
    assert one.program is Simulation(a, fidelity="analytic", session=session).program
