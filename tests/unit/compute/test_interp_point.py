"""LogGrid at one point (its scalar path) gives the bits the array path gives."""

from __future__ import annotations

import numpy as np
import pytest

from moesim.compute.interp import LogGrid


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_one_point_equals_the_array_path(ndim: int) -> None:
    rng = np.random.default_rng(ndim)
    for _ in range(5):
        axes = [np.sort(rng.choice(np.geomspace(1, 1e6, 40), size=int(rng.integers(1, 6)),
                                   replace=False)) for _ in range(ndim)]
        values = rng.uniform(1e-6, 1e-2, size=tuple(len(a) for a in axes))
        values[tuple(0 for _ in axes)] = np.nan  # a hole, filled by from_grid
        grid = LogGrid.from_grid(axes, values)
        q = np.exp(rng.uniform(-2, 16, size=(ndim, 40)))  # below, inside and above the axes
        q[:, :10] = np.round(q[:, :10]) + 1
        arrays = grid(*q)
        for j in range(q.shape[1]):
            point = [float(x) for x in q[:, j]]
            if j < 10:
                point = [int(x) for x in point]
            one = grid(*point)
            assert one.shape == () and one.tobytes() == arrays[j].tobytes()
            assert grid(*[np.float64(x) for x in point]).tobytes() == one.tobytes()
