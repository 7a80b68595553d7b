"""Lookups built from a calibration table's measured families: dense GEMMs, the grouped-GEMM
ratio of the MoE series, and memory-bound bandwidth curves.

Every lookup answers (seconds, source) with source "measured" (interpolated inside what was
measured), "derived" (computed from measurements by a stated rule: a ratio, a scaling, an
extrapolation outside the measured range) or leaves the answer to the roofline.

Dtypes: the model's dtype picks the table's family by :data:`DTYPE_FAMILY`. ``mxfp8``
(MX block-32 E8M0 scales, Blackwell) has no measured table; the nearest measured kernel is
the block-scaled FP8 one (``fp8_block``: 1x128 activation and 128x128 weight blocks), so its
times are ``derived`` from that family.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from moesim.compute.families import GemmGrid, MemoryCurve, MoESeries, times_s
from moesim.compute.interp import LogGrid

MEASURED = "measured"
DERIVED = "derived"
ROOFLINE = "roofline"

# model dtype -> (table family, whether the answer is only derived from that family)
DTYPE_FAMILY: dict[str, tuple[str, bool]] = {
    "bf16": ("bf16", False), "fp16": ("fp16", False), "fp32": ("fp32", False),
    "tf32": ("fp32", True), "fp8": ("fp8", False), "fp8_block": ("fp8_block", False),
    "mxfp8": ("fp8_block", True), "nvfp4": ("nvfp4", False),
}
QUANTIZED = ("fp8", "fp8_block", "mxfp8", "nvfp4")


class GemmLookup:
    """Dense GEMM seconds from one measured (m, n, k) grid."""

    def __init__(self, grid: GemmGrid, *, derived: bool = False) -> None:
        self.grid = LogGrid.from_grid([grid.m, grid.n, grid.k], grid.times_s())
        self.derived = derived
        self.dtype = grid.dtype
        self._log_axes = [np.log(np.asarray(a, dtype=np.float64)) for a in (grid.m, grid.n,
                                                                             grid.k)]
        self._columns: dict[tuple[int, float, float], np.ndarray] = {}

    def __call__(self, m: np.ndarray | float, n: float, k: float) -> np.ndarray:
        return self.grid(m, n, k)

    def rows(self, m: np.ndarray, n: float, k: float) -> np.ndarray:
        """Seconds at many m for one (n, k) (see :meth:`along`)."""
        return self.along(0, m, n, k)

    def along(self, axis: int, values: np.ndarray, a: float, b: float) -> np.ndarray:
        """Seconds at many sizes along ``axis`` (0 = m, 1 = n, 2 = k), the other two fixed
        at (a, b) in m, n, k order. The same interpolant as a full call, evaluated through
        the grid's column at (a, b) (multilinear is piecewise linear in one log axis when
        the others are fixed), so a call over [ranks, experts] costs one np.interp."""
        key = (axis, float(a), float(b))
        col = self._columns.get(key)
        lx = self._log_axes[axis]
        if col is None:
            args: list[np.ndarray | float] = [float(a), float(b)]
            args.insert(axis, np.exp(lx))
            col = self._columns[key] = np.log(self.grid(*args))
        x = np.log(np.asarray(values, dtype=np.float64))
        above = np.maximum(x - lx[-1], 0.0)  # proportional above the grid
        return np.exp(np.interp(x, lx, col) + above)

    def source(self, m: float, n: float, k: float) -> str:
        inside = self.grid.contains(m, n, k)
        return MEASURED if inside and not self.derived else DERIVED


@dataclass(frozen=True)
class RatioCurve:
    """r(rows per active expert): a grouped MoE FFN's measured time over the sum of its
    experts' dense GEMMs, held at the end values outside the measured rows."""

    rows: np.ndarray  # bin centres, rows per active expert (ascending)
    ratio: np.ndarray
    num_series: int
    dtype: str

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        x = np.log(np.maximum(np.asarray(rows, dtype=np.float64), 1e-12))
        return np.exp(np.interp(x, np.log(self.rows), np.log(self.ratio)))


def lower_curve(a: RatioCurve | None, b: RatioCurve | None) -> RatioCurve | None:
    """The pointwise lower of two ratio curves on the union of their rows (either alone when
    the other is missing)."""
    if a is None or b is None:
        return a if b is None else b
    rows = np.union1d(a.rows, b.rows)
    return RatioCurve(rows, np.minimum(a(rows), b(rows)), a.num_series + b.num_series,
                      f"{a.dtype}|{b.dtype}")


def balanced_tokens(assignments: int, experts: int) -> tuple[int, int, int]:
    """(q, experts with q + 1 tokens, experts with q tokens) of an even split."""
    q, rem = divmod(int(assignments), int(experts))
    return q, rem, int(experts) - rem


def moe_overhead_bytes(assignments: float, hidden: int, width: int, gate: int,
                       quantized: bool) -> list[tuple[float, str]]:
    """Bytes of the memory-bound ops moesim prices beside the expert GEMMs of one MoE
    forward (moesim/program/layers.py moe_block, BF16 activations): permute and unpermute
    2 x routed bytes each, the activation (gate + 1) x routed x width x 2 B, and for
    quantized dtypes the FP8 cast of both GEMM inputs (4 B per element)."""
    routed = assignments * hidden * 2.0
    out = [(2.0 * routed, "permute"), ((gate + 1) * assignments * width * 2.0, "elementwise"),
           (2.0 * routed, "permute")]
    if quantized:
        out += [(4.0 * assignments * hidden, "cast"), (4.0 * assignments * width, "cast")]
    return out


def ratio_curve(series: list[MoESeries], gemm: GemmLookup,
                memory_s: Callable[[np.ndarray, str], np.ndarray],
                dtype: str) -> RatioCurve | None:
    """The grouped ratio measured from EP1/TP1 balanced series (see docs/compute.md).

    Per point: the whole-FFN time minus the memory-bound ops moesim prices separately
    (:func:`moe_overhead_bytes`, at this model's memory_op) over the sum of the dense GEMMs
    of fc1 (n = gate x inter, k = hidden) and fc2 (n = hidden, k = inter) at the balanced
    tokens of every expert with tokens; the median per octave of rows per active expert.

    ``memory_s(bytes, kind)`` prices an array of memory-op sizes at once (seconds, 0 for no
    bytes). Every point of every series is priced in one call per lookup; each number is
    the one a point-by-point loop gives, summed in the same order.
    """
    used = [s for s in series if s.moe_tp_degree == 1 and s.moe_ep_degree == 1]
    if not used:
        return None
    npts = [len(s.num_tokens) for s in used]

    def per_point(values: list[float]) -> np.ndarray:
        return np.repeat(np.asarray(values, dtype=np.float64), npts)

    tokens = np.concatenate([np.asarray(s.num_tokens, dtype=np.int64) for s in used])
    t = np.concatenate([times_s(s.time_us) for s in used])
    experts = np.repeat(np.array([s.num_experts for s in used], dtype=np.int64), npts)
    a = tokens * np.repeat(np.array([s.top_k for s in used], dtype=np.int64), npts)
    gate = per_point([2 if s.gated else 1 for s in used])
    f, h = per_point([s.inter_size for s in used]), per_point([s.hidden_size for s in used])
    q, hi = np.divmod(a, experts)
    lo = experts - hi
    dense = np.zeros(a.shape)
    for rows, count in ((q + 1, hi), (q, lo)):
        ok = (rows > 0) & (count > 0)
        r = np.maximum(rows, 1).astype(np.float64)
        both = gemm(r, gate * f, h) + gemm(r, h, f)
        dense = np.where(ok, dense + count * both, dense)
    # the memory-bound ops of moe_overhead_bytes, added in its order
    af = a.astype(np.float64)
    routed = af * h * 2.0
    parts = [(2.0 * routed, "permute"), ((gate + 1) * af * f * 2.0, "elementwise"),
             (2.0 * routed, "permute")]
    if dtype in QUANTIZED:
        parts += [(4.0 * af * h, "cast"), (4.0 * af * f, "cast")]
    over = np.zeros(a.shape)
    for moved, kind in parts:
        over = over + memory_s(moved, kind)
    rpa = a / np.minimum(a, experts)
    # The residual is floored at a tenth of the measured time: memory-op estimates can
    # exceed what a fused kernel spends on them at tiny token counts.
    y = np.maximum(t - over, 0.1 * t) / dense
    bins = np.round(np.log2(rpa)).astype(int)
    centres = np.unique(bins)
    med = np.array([np.median(y[bins == b]) for b in centres])
    return RatioCurve(rows=2.0 ** centres.astype(np.float64), ratio=med, num_series=len(used),
                      dtype=dtype)


class MemoryLookup:
    """Seconds of a memory-bound op from a measured time-vs-bytes curve (derived: the curve
    is one kernel's, applied to any op by its bytes; flat below the smallest measured size,
    proportional above the largest)."""

    def __init__(self, curve: MemoryCurve) -> None:
        self.curve = curve
        self.grid = LogGrid([curve.size_bytes], np.log(times_s(curve.time_us)))

    def __call__(self, bytes_moved: float) -> float:
        return float(self.grid(bytes_moved))


def pick_memory_curve(curves: tuple[MemoryCurve, ...]) -> MemoryCurve | None:
    """The streaming curve memory ops use: the FP8 cast (one pass, read + write), if any."""
    for kind in ("fp8_cast", "elementwise"):
        for c in curves:
            if c.kind == kind:
                return c
    return curves[0] if curves else None
