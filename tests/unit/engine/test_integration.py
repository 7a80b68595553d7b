"""Memory integration, DualPipe in both fidelities, SM contention, FP8 casts."""

from __future__ import annotations

import numpy as np
import pytest

from moesim.engine import Simulation
from moesim.engine.overlap import overlapped_pair
from moesim.memory import estimate_memory
from moesim.program import build_program

DUALPIPE = ("parallelism.pipeline_schedule={kind: dualpipe}", "model.num_layers=8",
            "parallelism.all_to_all={kind: deepep, num_sms: 20}")


def test_result_carries_the_memory_report(make_scenario) -> None:
    sc = make_scenario("routing.load={kind: zipf, exponent: 1.0}")
    sim = Simulation(sc, fidelity="analytic")
    res = sim.run()
    # one fit verdict at either fidelity: the DES step's seeded routing draws
    # (moesim.engine.simulation.step_memory), which the analytic run draws for memory
    from moesim.routing import draw_step_routing

    recv = draw_step_routing(sc).recv_tokens
    report = estimate_memory(sc, recv_tokens=recv)
    assert res.fits_memory == report.fits
    assert res.most_loaded_rank_class == report.most_loaded
    assert [m.rank_class for m in res.memory] == [m.rank_class for m in report.rank_classes]
    assert max(m.memory.peak_bytes for m in res.memory) == pytest.approx(report.peak_bytes)


def test_memory_overflow_is_reported_not_raised(make_scenario) -> None:
    # Mixtral on one stage of 8 GPUs with no sharding cannot hold 47B parameters in 80 GB.
    sc = make_scenario("num_devices=8", "topology_overrides={}",
                       "parallelism.pipeline_parallel_degree=1",
                       "parallelism.pipeline_schedule={kind: 1f1b}", "parallelism.zero_stage=0",
                       "workload.global_batch_size=8")
    res = Simulation(sc, fidelity="analytic").run()
    assert not res.fits_memory


def test_dualpipe_analytic_matches_des(make_scenario) -> None:
    sc = make_scenario(*DUALPIPE)
    des = Simulation(sc, fidelity="des", include_memory=False).run()
    ana = Simulation(sc, fidelity="analytic", include_memory=False).run()
    assert ana.step_time_s == pytest.approx(des.step_time_s, rel=0.03)


def test_overlapped_pair_closed_form() -> None:
    # Work W = 10, comm C = 4, comm kernels hold f = 20/132 of the SMs: compute advances at
    # (1 - f) while comm runs, so the pair takes C + (W - (1 - f) C) = W + f C.
    f = 20 / 132
    assert overlapped_pair(np.array([10.0]), np.array([4.0]), f)[0] == pytest.approx(10 + 4 * f)
    # Comm-bound: W = 2 < (1 - f) C: the pair is the comm, C = 4.
    assert overlapped_pair(np.array([2.0]), np.array([4.0]), f)[0] == pytest.approx(4.0)
    # No SM budget: plain max.
    assert overlapped_pair(np.array([3.0]), np.array([4.0]), 0.0)[0] == 4.0


def test_sm_contention_lengthens_dualpipe(make_scenario) -> None:
    # Hybrid-EP: its SMs only slow the overlapped compute (DeepEP's own kernels would also be
    # starved at 1 SM, tests/unit/network/test_deepep_sms.py).
    a2a = "parallelism.all_to_all={kind: deepep, backend: hybridep, num_sms: %d}"
    few = Simulation(make_scenario(*DUALPIPE[:2], a2a % 1),
                     fidelity="analytic", include_memory=False).run()
    many = Simulation(make_scenario(*DUALPIPE[:2], a2a % 60),
                      fidelity="analytic", include_memory=False).run()
    assert many.step_time_s > few.step_time_s


def test_fp8_adds_cast_ops_per_gemm_input(make_scenario) -> None:
    bf16 = build_program(make_scenario())
    fp8 = build_program(make_scenario("workload.dtype=fp8"))
    casts = [o for o in fp8.chunks[0].forward if o.kind == "fp8_cast"]
    assert not [o for o in bf16.chunks[0].forward if o.kind == "fp8_cast"]
    # Mixtral chunk 0 holds one layer: QKV, out proj, router, expert fc1, fc2 = 5 casts.
    layers = len(fp8.chunks[0].layers)
    assert len(casts) == 5 * layers
    qkv = next(o for o in casts if ".qkv" in o.name)
    # QKV input: 4096 tokens x 4096 hidden, 4 B per element (read BF16, write FP8 + transpose).
    assert qkv.shape.bytes_moved == pytest.approx(4.0 * 4096 * 4096)
