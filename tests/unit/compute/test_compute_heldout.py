"""Held-out check on the shipped CPU table: drop grid planes, predict them from the rest."""

from __future__ import annotations

import pytest

from moesim.compute.fit import heldout_gemm_errors

# (axis, value) planes dropped one at a time; each is interior on its axis of the shipped
# grid (m 16..4096, n 256..16384, k 256..4096), so it is predicted by interpolation.
# benchmarks/bench_compute.py prints the same errors (docs/compute.md quotes them).
HELD_OUT = [("m", 64), ("m", 512), ("n", 1024), ("n", 4096), ("k", 1024)]


def test_heldout_gemms_within_25_percent(shipped):
    errors = heldout_gemm_errors(shipped, HELD_OUT)
    worst = {key: float(e.max()) for key, e in errors.items()}
    assert all(e.size >= 5 for e in errors.values())
    assert max(worst.values()) < 0.25, worst


def test_dropping_a_missing_plane_is_refused(shipped):
    with pytest.raises(ValueError):
        heldout_gemm_errors(shipped, [("m", 3)])


def test_shipped_table_interpolates_exactly(shipped):
    from moesim.compute import KernelCostModel
    from moesim.compute.fit import accelerator_from_table

    model = KernelCostModel(accelerator_from_table(shipped), shipped.dtype, shipped)
    for p in shipped.gemm[::7]:
        assert model.gemm(p.m, p.n, p.k).time_s == pytest.approx(p.timing.value(shipped.statistic), rel=1e-12)
