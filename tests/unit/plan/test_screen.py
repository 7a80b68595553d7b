"""The memory screen against the real memory model: exact, and cheaper than exhaustive."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plan_paths import MIXTRAL

from moesim.memory import estimate_memory
from moesim.plan.evaluate import ENGINE_MEMORY_BOUND, Backend, engine_memory, engine_memory_bound
from moesim.plan.layouts import (
    RECOMPUTE_ORDER,
    Layout,
    SearchSpaceSpec,
    all_to_all_options,
    expand,
    structural_reason,
    structures,
    with_layout,
)
from moesim.plan.screen import ScreenTask, groups, run_screen
from moesim.plan.search import sized
from moesim.specs.loader import load_scenario

# Mixtral 8x7B on 64 H100: TP/PP up to 4, no CP or VPP, three micro-batch sizes.
SPACE = SearchSpaceSpec(max_tensor_parallel=4, max_pipeline_parallel=4, max_context_parallel=1,
                        virtual_stages=(1,), micro_batch_sizes=(1, 2, 4))
BASE = sized(load_scenario(MIXTRAL), 64)
VALID = [lay for lay in structures(BASE, SPACE) if structural_reason(BASE, lay) is None]


def _exhaustive() -> set[Layout]:
    """Every (structure, ZeRO) with the least recomputation that fits, asked one by one."""
    kept = set()
    for lay in VALID:
        for z, f in SPACE.zero:
            for rc in RECOMPUTE_ORDER:
                a2a = all_to_all_options(BASE, lay, SPACE)[0]
                if engine_memory(with_layout(BASE, expand(lay, z, f, rc, a2a))).fits:
                    kept |= {expand(lay, z, f, rc, a) for a in all_to_all_options(BASE, lay, SPACE)}
                    break
    return kept


def test_screen_keeps_exactly_what_an_exhaustive_search_keeps() -> None:
    task = ScreenTask(Backend(), BASE, SPACE, tuple(groups(VALID)))
    considered, fitting, excluded, calls = run_screen(task)
    assert {lay for lay, _ in fitting} == _exhaustive()
    assert considered == sum(excluded.values()) + len(fitting)
    # Exhaustive asks up to 3 recompute settings x 2 ZeRO settings per structure; the bound
    # and the micro-batch ordering must save at least a third of that here.
    assert calls < 2 * 2 * len(VALID)


def test_without_a_bound_the_screen_keeps_the_same_layouts() -> None:
    with_bound = run_screen(ScreenTask(Backend(), BASE, SPACE, tuple(groups(VALID))))
    without = run_screen(ScreenTask(Backend(bound=""), BASE, SPACE, tuple(groups(VALID))))
    assert {lay for lay, _ in with_bound[1]} == {lay for lay, _ in without[1]}
    assert with_bound[2] == without[2]
    assert with_bound[3] < without[3]


def test_backend_picks_the_engine_bound_only_with_the_engine_memory() -> None:
    assert Backend().bound_name == ENGINE_MEMORY_BOUND
    assert Backend(memory="plan_fakes:memory").bound_name == ""
    assert Backend(memory="plan_fakes:memory").memory_bound(BASE) is None


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(VALID), st.sampled_from(SearchSpaceSpec().zero),
       st.sampled_from(RECOMPUTE_ORDER))
def test_bound_never_exceeds_the_peak(lay: Layout, zero: tuple[int, bool], rc: str) -> None:
    sc = with_layout(BASE, expand(lay, zero[0], zero[1], rc, "direct"))
    assert engine_memory_bound(sc) <= estimate_memory(sc).peak_bytes


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([lay for lay in VALID if lay.mbs == 1]),
       st.sampled_from(SearchSpaceSpec().zero), st.sampled_from(RECOMPUTE_ORDER))
def test_peak_does_not_fall_with_a_larger_micro_batch(lay: Layout, zero: tuple[int, bool],
                                                     rc: str) -> None:
    # The property the screen's micro-batch ordering relies on (moesim/plan/screen.py).
    peaks = [estimate_memory(with_layout(BASE, expand(Layout(**{**lay.__dict__, "mbs": m}),
                                                      zero[0], zero[1], rc, "direct"))).peak_bytes
             for m in (1, 2, 4)]
    assert peaks == sorted(peaks)
