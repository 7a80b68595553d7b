"""The host model: the CPU issues ops, runs ahead of the device and waits at sync points.

Hand-derived cases of the recursion in moesim/engine/timeline.py (host_recursion): host h
and device d start at 0; per step h += issue; start = max(d, h); d = start + duration; at a
sync point h = max(h, d) first. The device's idle time waiting for the host is the wait.
"""

from __future__ import annotations

import numpy as np
import pytest
from engine_scenarios import ROOT, scenario

from moesim.engine import Simulation
from moesim.engine.binding import ScenarioCostProvider, kernel_models
from moesim.engine.host import HOST_OP_S, HostModel, host_model
from moesim.engine.timeline import Step, host_recursion, issue_times
from moesim.program.ops import AllToAllShape, GemmShape, MemoryShape, Op, comm, compute
from moesim.specs.loader import load_scenario

US = 1e-6
QWEN16 = ROOT / "scenarios" / "qwen3-30b-a3b-16xh100.yaml"


def _steps(durations_us: list[float], host_us: float, sync_at: int | None = None) -> list[Step]:
    return [Step(f"s{i}", "k", "compute", True, np.array([d * US]), np.array([d * US]),
                 host=host_us * US, sync=i == sync_at) for i, d in enumerate(durations_us)]


def test_long_kernels_hide_the_host() -> None:
    # h: 3, 6, 9, 12; starts 3, 13, 14, 15; ends 13, 14, 15, 25. Only the first issue waits.
    total, wait = host_recursion(_steps([10, 1, 1, 10], 3), 1)
    assert total[0] == pytest.approx(25 * US)
    assert wait[0] == pytest.approx(3 * US)


def test_short_kernels_wait_for_the_host() -> None:
    # Every kernel (1) is shorter than an issue (3): the step is host-bound, 4 x 3 + 1.
    total, wait = host_recursion(_steps([1, 1, 1, 1], 3), 1)
    assert total[0] == pytest.approx(13 * US)
    assert wait[0] == pytest.approx(9 * US)


def test_a_sync_point_loses_the_host_lead() -> None:
    # As the first case, but the host waits for the device (d = 14) before issuing step 2:
    # h = 14 + 3 = 17 -> 18; h = 20 -> 30. Waits 3 + 3 + 2.
    total, wait = host_recursion(_steps([10, 1, 1, 10], 3, sync_at=2), 1)
    assert total[0] == pytest.approx(30 * US)
    assert wait[0] == pytest.approx(8 * US)


def _op(name: str) -> Op:
    return compute(name, "k", MemoryShape(8.0))


def test_a_captured_run_costs_one_launch() -> None:
    host = HostModel(op_s=5 * US, graphed=frozenset({"attn"}))
    ops = [_op("L0.attn.norm"), _op("L0.attn.qkv_proj"), _op("L0.attn.core"),
           _op("L0.moe.router"), _op("L1.attn.norm"), _op("L1.attn.out_proj")]
    assert issue_times(host, ops) == [5 * US, 0.0, 0.0, 5 * US, 5 * US, 0.0]
    full = HostModel(op_s=5 * US, graphed=frozenset({"full_iteration"}))
    assert sum(issue_times(full, ops)) == pytest.approx(5 * US)
    moe = HostModel(op_s=5 * US, graphed=frozenset({"moe"}))
    assert moe.captured(_op("L3.moe.router")) and moe.captured(_op("L3.moe.experts_fc1"))


def test_dropless_dispatch_syncs_padded_does_not() -> None:
    fwd = comm("L0.moe.dispatch", "ep_dispatch", "comm_ep", AllToAllShape(0, "dispatch"))
    bwd = comm("L0.moe.combine.bwd", "ep_dispatch", "comm_ep", AllToAllShape(0, "dispatch"))
    dropless = host_model(scenario())
    assert dropless.syncs_before(fwd) and not dropless.syncs_before(bwd)
    padded = host_model(scenario("routing.capacity_factor=1.0", "routing.pad_to_capacity=true"))
    assert not padded.syncs_before(fwd)


def test_defaults_gpu_fitted_tpu_none_and_override() -> None:
    assert host_model(scenario()).op_s == HOST_OP_S
    assert host_model(scenario("workload.host_op_us=12.5")).op_s == pytest.approx(12.5 * US)
    tpu = load_scenario(ROOT / "scenarios" / "switch-base-128-16xtpuv3.yaml")
    assert host_model(tpu).op_s == 0.0


def test_kernel_prices_carry_no_host_time() -> None:
    e = 0.5
    costs = ScenarioCostProvider(scenario(), fidelity="analytic", sustained_efficiency=e)
    gemm, _ = kernel_models(costs.scenario)
    assert costs.gemm(GemmShape(m=2, n=128, k=128)) == pytest.approx(
        gemm.gemm(2, 128, 128).time_s / e, rel=1e-12)


def test_host_time_slows_a_small_op_model_and_graphs_remove_it() -> None:
    sets = ("model.num_layers=4", "workload.global_batch_size=32")
    def run(*extra: str):  # noqa: ANN202
        return Simulation(load_scenario(QWEN16, sets + extra), fidelity="analytic",
                          include_memory=False).run()
    base, free = run(), run("workload.host_op_us=0")
    assert base.breakdown.host_wait_s > 0 and free.breakdown.host_wait_s == 0
    # The waits lengthen the step by at most their sum (a longer backward can hide more of
    # the gradient reduction behind it).
    assert free.step_time_s < base.step_time_s
    assert base.step_time_s <= (free.step_time_s + base.breakdown.host_wait_s) * (1 + 1e-9)
    slow = run("workload.host_op_us=200")
    graphed = run("workload.host_op_us=200", "workload.cuda_graph_modules=[attn, moe_router]")
    assert free.step_time_s < graphed.step_time_s < slow.step_time_s


def _summary(steps: list[Step]):  # noqa: ANN202
    from moesim.engine.timeline import PhasePlan
    return PhasePlan(steps).summary


def test_a_head_start_removes_the_waits_before_the_first_sync() -> None:
    # [10, 1, 1, 10] with issue 3 (first case): T(0) = 25 with 3 of waiting, all before any
    # sync, so T(inf) = 22 and T(L) = max(22, 25 - L). Host issue H = 12; with no sync the
    # host ends T(L) + L - H ahead: 13 from a synced start.
    sm = _summary(_steps([10, 1, 1, 10], 3))
    for lead, t in ((0, 25), (2, 23), (5, 22), (50, 22)):
        total, wait, out = sm.with_lead(lead * US)
        assert total[0] == pytest.approx(t * US)
        assert wait[0] == pytest.approx((t - 22) * US)
        assert out[0] == pytest.approx((t + lead - 12) * US)


def test_after_a_sync_the_lead_no_longer_matters() -> None:
    # Sync before step 2 (third case): T(0) = 30; unboundedly ahead the host still waits
    # for the device at the sync (d = 11, h = 14 -> 15; h = 17 -> 27), T(inf) = 27, and both
    # end with the host 10 ahead (30 - 20, 27 - 17).
    sm = _summary(_steps([10, 1, 1, 10], 3, sync_at=2))
    assert sm.with_lead(0.0)[0][0] == pytest.approx(30 * US)
    assert sm.with_lead(1.0)[0][0] == pytest.approx(27 * US)
    assert sm.with_lead(0.0)[2][0] == pytest.approx(10 * US)
    assert sm.with_lead(1.0)[2][0] == pytest.approx(10 * US)


def test_which_schedules_let_the_host_run_ahead() -> None:
    # Megatron-Core: non-interleaved PP > 1 synchronizes after each batched p2p exchange;
    # the interleaved schedule overlaps p2p on the stream; PP 1 exchanges nothing.
    from moesim.engine.host import host_runs_ahead
    assert not host_runs_ahead("1f1b", 4, 1)
    assert host_runs_ahead("1f1b", 1, 1)
    assert host_runs_ahead("interleaved_1f1b", 4, 2)
    assert not host_runs_ahead("interleaved_1f1b", 4, 1)
    assert not host_runs_ahead("dualpipe", 8, 1)
