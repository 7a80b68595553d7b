"""Analytic vs DES agreement, and determinism."""

from __future__ import annotations

import pytest

from moesim.engine import Simulation

SINGLE_STAGE = ("num_devices=8", "topology_overrides={}",
                "parallelism.pipeline_parallel_degree=1",
                "parallelism.pipeline_schedule={kind: 1f1b}",
                "parallelism.expert_parallel_degree=8", "workload.global_batch_size=16",
                "model.num_layers=4")


def test_analytic_matches_des_single_stage(make_scenario) -> None:
    sc = make_scenario(*SINGLE_STAGE)
    des = Simulation(sc, fidelity="des", include_memory=False).run()
    ana = Simulation(sc, fidelity="analytic", include_memory=False).run()
    assert ana.step_time_s == pytest.approx(des.step_time_s, rel=0.03)


def test_two_runs_byte_identical(make_scenario) -> None:
    sc = make_scenario(*SINGLE_STAGE, "routing.load={kind: zipf, exponent: 1.0}")
    a = Simulation(sc, include_memory=False).run().to_json()
    b = Simulation(sc, include_memory=False).run().to_json()
    assert a == b
