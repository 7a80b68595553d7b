"""Memory properties over layouts of Mixtral 8x7B on 64 H100 (hypothesis).

- a higher ZeRO stage never increases any rank's peak;
- more TP or more PP never increases a device's parameter bytes;
- full recompute never stores more activations than none (nor selective than none).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from moesim.memory import estimate_memory, parameter_bytes_per_rank
from moesim.specs.loader import load_scenario
from moesim.specs.scenario import ScenarioSpec

SCENARIO = Path(__file__).resolve().parents[1].parent / "scenarios/mixtral-8x7b-64xh100.yaml"
SCHEDULES = ["{kind: 1f1b}", "{kind: gpipe}", "{kind: dualpipe}",
             "{kind: interleaved_1f1b, num_virtual_stages: 2}"]


@lru_cache(maxsize=512)
def scenario(*sets: str) -> ScenarioSpec:
    return load_scenario(SCENARIO, sets)


def layout(tp: int, pp: int, ep: int, sched: str, recompute: str, zero: int) -> tuple[str, ...]:
    if pp == 1:
        sched = "{kind: 1f1b}"
    return (f"parallelism.tensor_parallel_degree={tp}", f"parallelism.pipeline_parallel_degree={pp}",
            f"parallelism.expert_parallel_degree={ep}", f"parallelism.pipeline_schedule={sched}",
            f"parallelism.recompute={recompute}", f"parallelism.zero_stage={zero}",
            "workload.grad_dtype=fp32")


LAYOUTS = st.tuples(st.sampled_from([1, 2, 4]), st.sampled_from([1, 2, 4]),
                    st.sampled_from([1, 2, 4, 8]), st.sampled_from(SCHEDULES),
                    st.sampled_from(["none", "selective", "full"]))


def peaks(sets: tuple[str, ...]) -> list[float]:
    return [rc.memory.peak_bytes for rc in estimate_memory(scenario(*sets)).rank_classes]


@settings(max_examples=40, deadline=None)
@given(LAYOUTS, st.sampled_from([0, 1, 2]))
def test_higher_zero_stage_never_increases_memory(lay, zero):
    low, high = peaks(layout(*lay, zero)), peaks(layout(*lay, zero + 1))
    assert all(h <= lo * (1 + 1e-12) for h, lo in zip(high, low, strict=True))


def param_bytes(sets: tuple[str, ...]) -> float:
    return max(r["dense"] + r["expert"] for r in parameter_bytes_per_rank(scenario(*sets)))


@settings(max_examples=40, deadline=None)
@given(LAYOUTS, st.sampled_from([0, 1, 2]))
def test_more_tp_never_increases_parameter_bytes(lay, zero):
    tp, pp, ep, sched, rec = lay
    if tp == 4:
        return
    assert param_bytes(layout(2 * tp, pp, ep, sched, rec, zero)) <= param_bytes(
        layout(tp, pp, ep, sched, rec, zero))


@settings(max_examples=40, deadline=None)
@given(LAYOUTS, st.sampled_from([0, 1, 2]))
def test_more_pp_never_increases_parameter_bytes(lay, zero):
    tp, pp, ep, sched, rec = lay
    if pp == 4:
        return
    assert param_bytes(layout(tp, 2 * pp, ep, sched, rec, zero)) <= param_bytes(
        layout(tp, pp, ep, sched, rec, zero))


def activations(sets: tuple[str, ...]) -> list[float]:
    out = []
    for rc in estimate_memory(scenario(*sets)).rank_classes:
        b = rc.memory.breakdown_bytes
        out.append(b["activations"] + b["recompute_working_set"])
    return out


@settings(max_examples=40, deadline=None)
@given(LAYOUTS, st.sampled_from([0, 1]))
def test_recompute_never_stores_more_than_none(lay, zero):
    tp, pp, ep, sched, _ = lay
    none = activations(layout(tp, pp, ep, sched, "none", zero))
    for mode in ("selective", "full"):
        other = activations(layout(tp, pp, ep, sched, mode, zero))
        assert all(o <= n for o, n in zip(other, none, strict=True))
