"""The two fitted compute terms of the cost provider: kernel time / efficiency, floored per op.

Derivation: an op costs max(kernel / e, f) (moesim/engine/binding.py). For a kernel far
shorter than f (a 2-row GEMM) the price is exactly f; for one far longer (an 8192^3 GEMM) it
is exactly kernel / e; a grouped GEMM is floored per rank.
"""

from __future__ import annotations

import numpy as np
import pytest
from engine_scenarios import scenario

from moesim.engine.binding import HOST_OP_FLOOR_S, ScenarioCostProvider, kernel_models
from moesim.program.ops import GemmShape, MemoryShape


def _provider(e: float, f: float) -> ScenarioCostProvider:
    return ScenarioCostProvider(scenario(), fidelity="analytic", sustained_efficiency=e,
                                host_floor_s=f)


def test_short_op_costs_the_floor_long_op_costs_kernel_over_efficiency() -> None:
    e, f = 0.5, 300e-6
    costs = _provider(e, f)
    gemm, _ = kernel_models(costs.scenario)
    tiny, big = GemmShape(m=2, n=128, k=128), GemmShape(m=8192, n=8192, k=8192)
    assert gemm.gemm(2, 128, 128).time_s / e < f          # the premise
    assert costs.gemm(tiny) == f
    big_kernel = gemm.gemm(8192, 8192, 8192).time_s
    assert big_kernel / e > f
    assert costs.gemm(big) == pytest.approx(big_kernel / e, rel=1e-12)
    assert costs.memory(MemoryShape(bytes_moved=1024.0)) == f


def test_grouped_gemm_is_floored_per_rank() -> None:
    e, f = 1.0, 250e-6
    costs = _provider(e, f)
    gemm, _ = kernel_models(costs.scenario)
    tokens = np.array([[1, 0, 0, 0], [65536, 65536, 65536, 65536]], dtype=np.float64)
    got = costs.grouped_gemm(tokens, 4096, 4096)
    raw = gemm.grouped_gemm_many(tokens, 4096, 4096)
    assert raw[0] < f < raw[1]
    assert got[0] == f
    assert got[1] == pytest.approx(raw[1], rel=1e-12)


def test_floor_is_memoized_separately_from_other_floors() -> None:
    # Prices are cached by value across providers: a different floor must not reuse them.
    shape = GemmShape(m=2, n=64, k=64)
    assert _provider(1.0, 100e-6).gemm(shape) == 100e-6
    assert _provider(1.0, 200e-6).gemm(shape) == 200e-6


def test_default_floor_is_the_fitted_constant() -> None:
    costs = ScenarioCostProvider(scenario(), fidelity="analytic")
    assert costs.floor == HOST_OP_FLOOR_S
    assert costs.memory(MemoryShape(bytes_moved=8.0)) == HOST_OP_FLOOR_S


def test_workload_sets_the_floor() -> None:
    # A CUDA-graph-captured step: no host floor; a slower host: a larger one.
    graphed = ScenarioCostProvider(scenario("workload.host_op_floor_us=0"), fidelity="analytic")
    assert graphed.floor == 0.0
    assert graphed.memory(MemoryShape(bytes_moved=8.0)) < HOST_OP_FLOOR_S
    slow = ScenarioCostProvider(scenario("workload.host_op_floor_us=400"), fidelity="analytic")
    assert slow.floor == pytest.approx(400e-6)


def test_no_floor_makes_a_small_op_model_faster() -> None:
    from engine_scenarios import ROOT

    from moesim.engine import Simulation
    from moesim.specs.loader import load_scenario

    path = ROOT / "scenarios" / "qwen3-30b-a3b-16xh100.yaml"
    base = Simulation(load_scenario(path), fidelity="analytic", include_memory=False).run()
    graphed = Simulation(load_scenario(path, ("workload.host_op_floor_us=0",)),
                         fidelity="analytic", include_memory=False).run()
    assert graphed.step_time_s < 0.9 * base.step_time_s


def test_tpu_steps_have_no_host_floor() -> None:
    # XLA compiles the whole step: nothing is issued per op from the host.
    from engine_scenarios import ROOT

    from moesim.specs.loader import load_scenario

    tpu = load_scenario(ROOT / "scenarios" / "switch-base-128-16xtpuv3.yaml")
    assert tpu.topology_spec.accelerator.vendor == "google"
    assert ScenarioCostProvider(tpu, fidelity="analytic").floor == 0.0
    set_by_hand = load_scenario(ROOT / "scenarios" / "switch-base-128-16xtpuv3.yaml",
                                ("workload.host_op_floor_us=50",))
    assert ScenarioCostProvider(set_by_hand, fidelity="analytic").floor == pytest.approx(50e-6)
