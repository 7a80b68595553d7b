"""Log-space interpolation: exact at measured points, monotone where the data is."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moesim.compute.interp import LogGrid

M = np.array([16.0, 64.0, 256.0, 1024.0])
N = np.array([256.0, 1024.0, 4096.0])
K = np.array([256.0, 2048.0])


def _grid(noise: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Times t = 1e-5 + 2mnk / 1e11 (launch floor plus a rate), on the M x N x K grid."""
    mm, nn, kk = np.meshgrid(M, N, K, indexing="ij")
    t = 1e-5 + 2 * mm * nn * kk / 1e11
    if noise is not None:
        t = t * noise
    sizes = np.stack([mm.ravel(), nn.ravel(), kk.ravel()], axis=1)
    return sizes, t.ravel()


def test_exact_at_measured_points():
    sizes, t = _grid()
    grid = LogGrid.from_points(sizes, t)
    got = grid(sizes[:, 0], sizes[:, 1], sizes[:, 2])
    np.testing.assert_allclose(got, t, rtol=1e-12)


def test_log_linear_between_points():
    # Halfway in log m between 16 and 64 (m = 32) the interpolant is the geometric mean.
    sizes, t = _grid()
    grid = LogGrid.from_points(sizes, t)
    t16 = 1e-5 + 2 * 16 * 256 * 256 / 1e11
    t64 = 1e-5 + 2 * 64 * 256 * 256 / 1e11
    assert float(grid(32, 256, 256)) == pytest.approx(np.sqrt(t16 * t64), rel=1e-12)


def test_extrapolation_rules():
    sizes, t = _grid()
    grid = LogGrid.from_points(sizes, t)
    top = float(grid(1024, 4096, 2048))
    # Above the grid time grows with the size ratio; below it holds the smallest time.
    assert float(grid(4096, 4096, 2048)) == pytest.approx(4 * top, rel=1e-12)
    assert float(grid(1, 256, 256)) == pytest.approx(float(grid(16, 256, 256)), rel=1e-12)


def test_partial_grid_is_filled():
    sizes, t = _grid()
    keep = ~((sizes[:, 0] == 1024) & (sizes[:, 1] == 4096) & (sizes[:, 2] == 2048))
    grid = LogGrid.from_points(sizes[keep], t[keep])
    # The missing corner comes from its nearest neighbour scaled by the size ratio.
    assert np.isfinite(float(grid(1024, 4096, 2048)))
    np.testing.assert_allclose(grid(*sizes[keep].T), t[keep], rtol=1e-12)


@settings(max_examples=80, deadline=None)
@given(st.floats(8, 8192), st.floats(8, 8192), st.floats(128, 16384), st.floats(128, 16384),
       st.lists(st.floats(0.9, 1.1), min_size=24, max_size=24))
def test_monotone_in_each_dimension(m1, m2, n, k, noise):
    # Noise of +-10% keeps these times monotone in m along every grid line (the ratio between
    # neighbouring m values is >= 1.2 here), so the interpolant must be monotone in m.
    sizes, t = _grid(np.array(noise).reshape(4, 3, 2))
    tt = t.reshape(4, 3, 2)
    if not (np.diff(tt, axis=0) > 0).all():
        return
    grid = LogGrid.from_points(sizes, t)
    lo, hi = sorted((m1, m2))
    assert float(grid(lo, n, k)) <= float(grid(hi, n, k)) * (1 + 1e-12)


def test_vectorized_matches_scalar():
    sizes, t = _grid()
    grid = LogGrid.from_points(sizes, t)
    ms = np.array([20.0, 100.0, 700.0, 3000.0])
    vec = grid(ms, 1500.0, 900.0)
    assert vec.shape == (4,)
    for i, m in enumerate(ms):
        assert vec[i] == pytest.approx(float(grid(m, 1500.0, 900.0)), rel=1e-12)
