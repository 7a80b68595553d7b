"""Measured NCCL curves as the network model's answer inside one scale-up domain
(moesim.compute.tables.measured_collective), by hand on the shipped H100 table."""

from __future__ import annotations

from pathlib import Path

import pytest

from moesim.compute.tables import DEFAULT_TABLES, default_table_for, measured_collective
from moesim.specs.loader import load_topology

ROOT = Path(__file__).resolve().parents[3]


def _h100():
    acc = load_topology(ROOT / "topologies" / "dgx-h100-superpod.yaml").accelerator
    return acc, DEFAULT_TABLES.load(default_table_for(acc.name))


def test_a_measured_size_returns_its_measurement() -> None:
    acc, table = _h100()
    c = next(c for c in table.collective_curves if c.op == "all_reduce" and c.num_gpus == 8
             and c.dtype == "fp16")
    i = len(c.size_bytes) // 2
    t, src = measured_collective(table, acc, "all_reduce", 8, c.size_bytes[i])
    assert src == "measured" and t == pytest.approx(c.time_us[i] * 1e-6, rel=1e-9)


def test_above_the_curve_bandwidth_saturates_towards_the_model() -> None:
    acc, table = _h100()
    c = next(c for c in table.collective_curves if c.op == "all_reduce" and c.num_gpus == 8
             and c.dtype == "fp16")
    s_top, t_top = c.size_bytes[-1], c.time_us[-1] * 1e-6
    size = 32 * s_top
    held, src = measured_collective(table, acc, "all_reduce", 8, size)
    assert src == "derived" and held == pytest.approx(t_top * 32, rel=1e-12)
    # A model twice as fast as the held bandwidth: B = 2 b_top, S0 = S_top, t = (S + S0) / B.
    model = held / 2
    t, _ = measured_collective(table, acc, "all_reduce", 8, size, model)
    rate = size / model
    assert t == pytest.approx((size + s_top) / rate, rel=1e-9)
    assert model < t < held
    # A slower model does not slow the measurement down.
    assert measured_collective(table, acc, "all_reduce", 8, size, 2 * held)[0] == held


def test_other_accelerators_and_unmeasured_counts_get_none() -> None:
    acc, table = _h100()
    h800 = load_topology(ROOT / "topologies" / "h800-deepseek-2048.yaml").accelerator
    assert measured_collective(table, h800, "all_reduce", 8, 2**20) is None  # other NVLink
    assert measured_collective(table, acc, "all_reduce", 3, 2**20) is None
    assert measured_collective(None, acc, "all_reduce", 8, 2**20) is None
