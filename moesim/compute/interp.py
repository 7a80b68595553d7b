"""Interpolation of measured kernel times in log space, vectorized with numpy.

A :class:`LogGrid` holds log(time) on a tensor grid of log(size) axes (GEMM: m, n, k; a
memory op: bytes) and interpolates multilinearly. Properties the tests check:

- at a measured point it returns the measured time (to float rounding);
- where the measured times are monotone along an axis, so is the interpolant (a multilinear
  interpolant is a positive combination of monotone piecewise-linear functions);
- above the largest measured size of an axis, time grows in proportion to the size (the
  largest kernel's efficiency is held); below the smallest it stays at the smallest
  kernel's time (small kernels are latency bound, so this is the conservative choice).

Grid cells that were not measured (a partial grid) are filled from the nearest measured
point in log space, scaled by the ratio of sizes, before interpolation
(:meth:`LogGrid.from_points`). :meth:`LogGrid.from_grid` fills a full grid with holes axis by
axis: between measured cells of a line log-linearly, beyond them by the rules for queries
outside the grid (in proportion to the size above, held below).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import numpy as np

# Query types answered point by point (LogGrid._at)
_SCALARS = (int, float, np.integer, np.floating)


class LogGrid:
    """Multilinear interpolation of log(time) over log(size) axes."""

    def __init__(self, axes: Sequence[Sequence[float]], log_times: np.ndarray) -> None:
        self.axes = [np.log(np.asarray(a, dtype=np.float64)) for a in axes]
        values = np.asarray(log_times, dtype=np.float64)
        assert values.shape == tuple(len(a) for a in self.axes), "grid shape mismatch"
        # A one-value axis is widened to two equal slices so every axis has a cell.
        for d, ax in enumerate(self.axes):
            if len(ax) == 1:
                self.axes[d] = np.array([ax[0], ax[0] + 1.0])
                values = np.concatenate([values, values], axis=d)
        self.values = values
        # the axes and values as Python lists, for one-point queries (LogGrid._at)
        self._lists = [ax.tolist() for ax in self.axes]
        self._values = values.tolist()
        self.lo = np.array([ax[0] for ax in self.axes])
        self.hi = np.array([ax[-1] for ax in self.axes])

    @classmethod
    def from_points(cls, sizes: np.ndarray, times: np.ndarray) -> LogGrid:
        """Build from scattered points: ``sizes`` [P, D] (positive), ``times`` [P] seconds."""
        sizes = np.asarray(sizes, dtype=np.float64)
        times = np.asarray(times, dtype=np.float64)
        axes = [np.unique(sizes[:, d]) for d in range(sizes.shape[1])]
        shape = tuple(len(a) for a in axes)
        grid = np.full(shape, np.nan)
        idx = tuple(np.searchsorted(axes[d], sizes[:, d]) for d in range(sizes.shape[1]))
        grid[idx] = np.log(times)
        if np.isnan(grid).any():
            _fill_missing(grid, axes, np.log(sizes), np.log(times))
        return cls(axes, grid)

    @classmethod
    def from_grid(cls, axes: Sequence[Sequence[float]], times: np.ndarray) -> LogGrid:
        """Build from a full grid of seconds with NaN holes (vectorized; see module)."""
        log_axes = [np.log(np.asarray(a, dtype=np.float64)) for a in axes]
        values = np.log(np.asarray(times, dtype=np.float64))
        assert np.isfinite(values).any(), "grid has no measured cell"
        for _ in range(len(log_axes)):
            if np.isfinite(values).all():
                break
            for d, ax in enumerate(log_axes):
                values = _fill_along(values, ax, d)
        return cls(axes, values)

    def __call__(self, *queries: np.ndarray | float) -> np.ndarray:
        """Seconds at the query sizes (one array per axis, broadcast together)."""
        if all(isinstance(x, _SCALARS) for x in queries):
            return self._at(queries)
        q = np.broadcast_arrays(*[np.log(np.asarray(x, dtype=np.float64)) for x in queries])
        shape = q[0].shape
        flat = [x.reshape(-1) for x in q]
        lower, weight, excess = [], [], np.zeros(flat[0].shape)
        for d, ax in enumerate(self.axes):
            x = flat[d]
            excess += np.maximum(x - ax[-1], 0.0)  # above the grid: time proportional to size
            xc = np.clip(x, ax[0], ax[-1])
            i = np.clip(np.searchsorted(ax, xc, side="right") - 1, 0, len(ax) - 2)
            lower.append(i)
            weight.append((xc - ax[i]) / (ax[i + 1] - ax[i]))
        out = np.zeros(flat[0].shape)
        ndim = len(self.axes)
        for corner in range(2**ndim):
            w = np.ones(flat[0].shape)
            index = []
            for d in range(ndim):
                bit = (corner >> d) & 1
                w = w * (weight[d] if bit else 1.0 - weight[d])
                index.append(lower[d] + bit)
            out += w * self.values[tuple(index)]
        return np.exp(out + excess).reshape(shape)

    def _at(self, queries: tuple[float, ...]) -> np.ndarray:
        """:meth:`__call__` at one point (a 0-d array): the same operations in the same
        order on Python floats (the logs and the exp are numpy's, as for arrays), without
        numpy's per-call overhead; the engine prices thousands of single shapes."""
        lower, weight, excess = [], [], 0.0
        for x, ax in zip(np.log(np.array(queries, dtype=np.float64)).tolist(), self._lists,
                         strict=True):
            excess += max(x - ax[-1], 0.0)
            xc = min(max(x, ax[0]), ax[-1])
            i = min(max(bisect.bisect_right(ax, xc) - 1, 0), len(ax) - 2)
            lower.append(i)
            weight.append((xc - ax[i]) / (ax[i + 1] - ax[i]))
        out = 0.0
        if len(lower) == 1:  # a memory-op curve: the two corners written out
            i, w1 = lower[0], weight[0]
            values = self._values
            out += (1.0 * (1.0 - w1)) * values[i]
            out += (1.0 * w1) * values[i + 1]
            return np.exp(np.array(out + excess))
        ndim = len(lower)
        for corner in range(2**ndim):
            w = 1.0
            cell = self._values
            for d in range(ndim):
                bit = (corner >> d) & 1
                w = w * (weight[d] if bit else 1.0 - weight[d])
                cell = cell[lower[d] + bit]
            out += w * cell
        return np.exp(np.array(out + excess))

    def contains(self, *queries: float) -> bool:
        """Whether the query lies inside the measured range on every axis."""
        x = np.log(np.asarray(queries, dtype=np.float64))
        return bool(np.all(x >= self.lo - 1e-9) and np.all(x <= self.hi + 1e-9))


def _fill_missing(grid: np.ndarray, axes: list[np.ndarray], log_sizes: np.ndarray,
                  log_times: np.ndarray) -> None:
    """Fill NaN cells from the nearest measured point, scaling time with the size ratio."""
    for cell in zip(*np.nonzero(np.isnan(grid)), strict=True):
        target = np.array([np.log(axes[d][c]) for d, c in enumerate(cell)])
        nearest = int(np.argmin(((log_sizes - target) ** 2).sum(axis=1)))
        grid[cell] = log_times[nearest] + float((target - log_sizes[nearest]).sum())


def _fill_along(values: np.ndarray, log_axis: np.ndarray, d: int) -> np.ndarray:
    """Fill NaNs along axis ``d`` from the finite cells of the same line.

    Between two measured cells: log-linear interpolation (so monotone data stay monotone);
    above the last one: time in proportion to size; below the first: held (the rules for
    queries outside the grid)."""
    v = np.moveaxis(values, d, -1).copy()
    n = v.shape[-1]
    idx = np.arange(n)
    ok = np.isfinite(v)
    below = np.maximum.accumulate(np.where(ok, idx, -1), axis=-1)
    above = np.flip(np.minimum.accumulate(np.flip(np.where(ok, idx, n), -1), axis=-1), -1)
    has_b, has_a = below >= 0, above < n
    ib, ia = np.clip(below, 0, n - 1), np.clip(above, 0, n - 1)
    vb, va = np.take_along_axis(v, ib, -1), np.take_along_axis(v, ia, -1)
    xb, xa = log_axis[ib], log_axis[ia]
    span = np.where(xa > xb, xa - xb, 1.0)
    between = vb + (va - vb) * (log_axis - xb) / span
    fill = np.where(has_b & has_a, between,
                    np.where(has_b, vb + (log_axis - xb), np.where(has_a, va, np.nan)))
    v = np.where(ok, v, fill)
    return np.moveaxis(v, -1, d)


def interp_1d_log(x: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Piecewise-linear interpolation of log(ys) over log(xs), clamped at both ends."""
    order = np.argsort(xs)
    lx = np.log(np.asarray(xs, dtype=np.float64)[order])
    ly = np.log(np.asarray(ys, dtype=np.float64)[order])
    return np.exp(np.interp(np.log(np.asarray(x, dtype=np.float64)), lx, ly))
