"""DeepEP's normal kernels are bounded by the SMs they hold (moesim.network.deepep.sm_rates).

The per-SM rate is the median, over the accelerator table's SM-bound DeepEP series, of the
bytes a rank sends (itself included) per second per SM; the kernel takes at least
(busiest rank's row sum) / (num_sms x rate). Hybrid-EP (TMA copies) has no such bound.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from moesim.cluster import build_cluster
from moesim.cluster.synthetic import gpu_cluster
from moesim.compute.tables import DEFAULT_TABLES
from moesim.engine import Simulation
from moesim.errors import SpecError
from moesim.network.alltoall import all_to_all_v_time
from moesim.network.deepep import (
    H100_SM_RATE_INTER,
    H100_SM_RATE_INTRA,
    deepep_traffic,
    sm_rates,
    token_bytes,
)
from moesim.specs.loader import load_scenario

ROOT = Path(__file__).resolve().parents[3]


def test_the_h100_constants_are_the_h100_tables_rates() -> None:
    r = sm_rates(DEFAULT_TABLES.load(ROOT / "calibration" / "aic-h100-sxm.json"))
    assert r.source == "measured"
    assert r.intra == pytest.approx(H100_SM_RATE_INTRA, rel=1e-3)
    assert r.inter == pytest.approx(H100_SM_RATE_INTER, rel=1e-3)
    assert sm_rates(None).source == "default"


def test_one_measured_point_by_hand() -> None:
    # B200, one node, 24 SMs, 131072 tokens per rank, FP8 dispatch 13.39 ms (the table's
    # row): each token reaches 8 (1 - C(224, 8) / C(256, 8)) = 5.25 ranks, 7168 x 1.03125 B
    # each, so a rank sends 131072 x 5.25 x 7392 B = 5.09 GB: 380 GB/s, 15.8 GB/s per SM.
    tr = deepep_traffic(8, num_tokens=131072, token_bytes=token_bytes(7168, "dispatch"))
    sent = float(tr.traffic_bytes.sum(axis=1).max())
    assert sent == pytest.approx(131072 * 5.25 * 7392, rel=0.01)
    assert sent / 13.39e-3 / 24 == pytest.approx(15.8e9, rel=0.02)


def test_the_bound_is_the_row_sum_over_the_sm_rate() -> None:
    # 8 GPUs of one node, 64 MiB to each peer: the links take 7 x 64 MiB / (450 GB/s x
    # 0.836); an SM budget of 10 GB/s takes 8 x 64 MiB / 10 GB/s (the diagonal is sent too).
    c = build_cluster(gpu_cluster("H100", 1))
    t = np.full((8, 8), 64 * 2**20, dtype=float)
    free = all_to_all_v_time(c, [list(range(8))], t, algorithm="deepep")
    bound = all_to_all_v_time(c, [list(range(8))], t, algorithm="deepep", sm_bytes_per_s=10e9)
    lat = bound.time_s - 8 * 64 * 2**20 / 10e9
    assert bound.time_s > free.time_s
    assert 0 < lat < 50e-6  # what is left is the launch and step latency
    wide = all_to_all_v_time(c, [list(range(8))], t, algorithm="deepep", sm_bytes_per_s=1e15)
    assert wide.time_s == pytest.approx(free.time_s, rel=1e-12)


def _step(num_sms: int, backend: str = "deepep") -> float:
    s = load_scenario(ROOT / "scenarios" / "deepseek-v3-2048xh800.yaml",
                      [f"parallelism.all_to_all.num_sms={num_sms}",
                       f"parallelism.all_to_all.backend={backend}"])
    return Simulation(s, fidelity="analytic").run().step_time_s


def test_num_sms_moves_the_step_both_ways() -> None:
    # Few SMs starve the dispatch (the SM bound binds), many take compute away from the
    # overlapped GEMMs: 1 SM is far slower than 20, 64 slower than 20.
    one, twenty, many = _step(1), _step(20), _step(64)
    assert one > 1.5 * twenty
    assert many > twenty


def test_hybridep_has_no_sm_bound() -> None:
    # Hybrid-EP's SMs are charged to compute only: one SM is then the fastest.
    assert _step(1, "hybridep") < _step(20, "hybridep")


def test_num_sms_must_leave_sms_to_compute() -> None:
    with pytest.raises(SpecError) as info:
        load_scenario(ROOT / "scenarios" / "deepseek-v3-2048xh800.yaml",
                      ["parallelism.all_to_all.num_sms=132"])
    assert "num_sms" in str(info.value) and "\n" not in str(info.value)
