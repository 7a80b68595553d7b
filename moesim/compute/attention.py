"""Fused attention times from a table's measured attention and MLA series.

Forward (see docs/compute.md, "Attention"):

- context series (causal prefill forward): the series of the nearest head dim, then the
  nearest query-heads-per-KV-head group, interpolated in log space over batch x heads and
  sequence; above the longest measured sequence time grows with the square of the sequence
  (the FLOPs of prefill attention; a decode step's reads grow with the cached tokens), above
  the largest batch x heads in proportion;
- MLA shapes (qk head dim 192 = 128 + 64 rope, v head dim 128) from the MLA series, else
  from the head-dim-192 series scaled by FLOPs (qk + v = 320 instead of 384);
- a sliding window from series measured with that window, else the full-attention time x
  the attended fraction; one decode step (seq_q = 1) from the generation series;
- non-causal = 2 x causal (twice the FLOPs); seq_q < seq_kv by the FLOP ratio.

Backward = forward x :func:`backward_ratio` (FlashAttention-3, cited below), source
"derived". A head dim off the measured ones scales by FLOPs (derived). Nothing to match:
None, and the kernel model answers from the roofline.
"""

from __future__ import annotations

import numpy as np

from moesim.compute.families import AttentionSeries, MLASeries, times_s
from moesim.compute.interp import LogGrid
from moesim.compute.measured import DERIVED, MEASURED

# FlashAttention-3 (Shah et al., arXiv:2407.08608), H100 SXM5 BF16, head dim 128, without
# causal mask: forward (Fig. 5) and backward (Fig. 6) TFLOP/s at sequence 1K..16K (values
# printed on the bars; the same figures are in the flash-attention repository's hopper
# README). FLOPs as flash-attention's benchmarks/benchmark_flash_attention.py counts them:
# backward = 2.5 x forward. So t_bwd / t_fwd = 2.5 x fwd_rate / bwd_rate.
FA3_SEQ = (1024.0, 2048.0, 4096.0, 8192.0, 16384.0)
FA3_FWD_TFLOPS = (565.0, 625.0, 638.0, 646.0, 648.0)
FA3_BWD_TFLOPS = (424.0, 501.0, 542.0, 559.0, 561.0)
BACKWARD_FLOP_RATIO = 2.5


def backward_ratio(seq_kv: float) -> float:
    """Attention backward time / forward time at ``seq_kv`` (3.33 at 1K .. 2.89 at 16K),
    interpolated in log sequence and held at the ends."""
    r = [BACKWARD_FLOP_RATIO * f / b for f, b in zip(FA3_FWD_TFLOPS, FA3_BWD_TFLOPS,
                                                       strict=True)]
    return float(np.interp(np.log(seq_kv), np.log(FA3_SEQ), r))


def attended_fraction(seq: float, window: float) -> float:
    """Causal sliding window: sum_i min(i + 1, w) over full causal sum_i (i + 1)."""
    s, w = float(seq), float(min(window, seq))
    return (w * s - w * (w - 1.0) / 2.0) / (s * (s + 1.0) / 2.0)


def _power(phase: str) -> float:
    return 2.0 if phase == "context" else 1.0


class _Surface:
    """log time over (log batch*heads, log seq) from a set of series, with extrapolation."""

    def __init__(self, series: list[AttentionSeries] | list[MLASeries], power: float) -> None:
        self.power = power  # time ~ seq^power beyond the longest measured sequence
        pts: dict[tuple[float, float], list[float]] = {}
        for s in series:
            t = times_s(s.time_us).reshape(len(s.batch), len(s.seq))
            for i, b in enumerate(s.batch):
                for j, q in enumerate(s.seq):
                    if np.isfinite(t[i, j]):
                        pts.setdefault((float(b * s.num_heads), float(q)), []).append(
                            float(np.log(t[i, j])))
        keys = sorted(pts)
        sizes = np.array(keys, dtype=np.float64)
        times = np.exp([float(np.median(pts[k])) for k in keys])
        self.grid = LogGrid.from_points(sizes, times)
        self.measured = set(keys)
        self.bh_max = float(sizes[:, 0].max())
        self.seq_max = float(sizes[:, 1].max())

    def __call__(self, bh: float, seq: float) -> tuple[float, bool]:
        """(seconds, inside the measured range)."""
        inside = self.grid.contains(bh, seq)
        if seq > self.seq_max:  # prefill FLOPs grow with seq^2; a decode step's reads with seq
            t = float(self.grid(bh, self.seq_max)) * (seq / self.seq_max) ** self.power
            return t, False
        return float(self.grid(bh, seq)), inside


class AttentionLookup:
    """Forward attention seconds from one table's series, for one attention dtype."""

    def __init__(self, attention: tuple[AttentionSeries, ...], mla: tuple[MLASeries, ...],
                 dtype: str, kv_dtype: str) -> None:
        self.attention = [s for s in attention if s.attn_dtype == dtype
                          and s.kv_cache_dtype == kv_dtype]
        self.mla = [s for s in mla if s.dtype == dtype and s.kv_cache_dtype == kv_dtype]
        self._surfaces: dict[tuple[object, ...], _Surface | LogGrid | None] = {}

    def _surface(self, phase: str, head_dim: int, group: float, window: int
                 ) -> tuple[_Surface | None, int, float]:
        rows = [s for s in self.attention if s.phase == phase and s.window == window]
        if not rows:
            return None, 0, 0.0
        d = min({s.head_dim for s in rows}, key=lambda x: (abs(np.log(x / head_dim)), x))
        rows = [s for s in rows if s.head_dim == d]
        g = min({s.num_heads / s.num_kv_heads for s in rows},
                key=lambda x: (abs(np.log(x / group)), x))
        key = (phase, d, g, window)
        if key not in self._surfaces:
            chosen = [s for s in rows if s.num_heads / s.num_kv_heads == g]
            self._surfaces[key] = _Surface(chosen, _power(phase))
        surf = self._surfaces[key]
        assert surf is None or isinstance(surf, _Surface)
        return surf, d, g

    def _mla_surface(self, phase: str) -> _Surface | None:
        key = ("mla", phase)
        if key not in self._surfaces:
            rows = [s for s in self.mla if s.phase == phase]
            self._surfaces[key] = _Surface(rows, _power(phase)) if rows else None
        surf = self._surfaces[key]
        assert surf is None or isinstance(surf, _Surface)
        return surf

    def forward(self, batch: int, seq_q: int, seq_kv: int, num_heads: int, num_kv_heads: int,
                head_dim: int, *, causal: bool, window: int | None = None,
                head_dim_v: int | None = None) -> tuple[float, str] | None:
        """(seconds, source) of the forward pass, or None if no series applies."""
        phase = "generation" if seq_q == 1 and seq_kv > 1 else "context"
        bh = float(batch * num_heads)
        dv = head_dim if head_dim_v is None else head_dim_v
        derived = False
        hit = self._mla(phase, bh, seq_kv, head_dim, dv)
        if hit is None:
            hit = self._standard(phase, bh, seq_kv, num_heads, num_kv_heads, head_dim, dv,
                                 window)
        if hit is None:
            return None
        t, exact = hit
        derived = not exact
        if phase == "context":
            if not causal:  # twice the FLOPs of the causal kernel
                t, derived = 2.0 * t, True
            if seq_q != seq_kv:  # a query chunk against a longer key sequence
                full = seq_kv * seq_kv / (2.0 if causal else 1.0)
                part = seq_q * seq_kv - (seq_q * seq_q / 2.0 if causal else 0.0)
                t, derived = t * max(part, seq_q) / full, True
        return t, DERIVED if derived else MEASURED

    def _mla(self, phase: str, bh: float, seq: int, d: int, dv: int
             ) -> tuple[float, bool] | None:
        if not (d == 192 and dv == 128):
            return None
        surf = self._mla_surface(phase)
        if surf is not None:
            return surf(bh, seq)
        if phase != "context":
            return None
        surf, d192, _ = self._surface("context", 192, 1.0, 0)
        if surf is None or d192 != 192:
            return None
        t, _ = surf(bh, seq)
        return t * (192 + 128) / (192 + 192), False

    def _exact(self, phase: str, batch: int, seq: int, h: int, kv: int, d: int, w: int
               ) -> float | None:
        """The series of exactly this geometry, inside its measured (batch, seq) range."""
        for s in self.attention:
            if (s.phase, s.num_heads, s.num_kv_heads, s.head_dim, s.window) != (
                    phase, h, kv, d, w):
                continue
            key = ("exact", id(s))
            if key not in self._surfaces:
                t = times_s(s.time_us).reshape(len(s.batch), len(s.seq))
                self._surfaces[key] = LogGrid.from_grid([s.batch, s.seq], t)  # type: ignore[assignment]
            grid = self._surfaces[key]
            assert isinstance(grid, LogGrid)
            return float(grid(batch, seq)) if grid.contains(batch, seq) else None
        return None

    def _standard(self, phase: str, bh: float, seq: int, h: int, kv: int, d: int, dv: int,
                  window: int | None) -> tuple[float, bool] | None:
        group = h / max(kv, 1)
        w = int(window or 0)
        if w >= seq:
            w = 0
        if dv == d:
            hit = self._exact(phase, int(round(bh / h)), seq, h, kv, d, w)
            if hit is not None:
                return hit, True
        surf, dd, g = self._surface(phase, d, group, w)
        scale = 1.0
        if surf is None and w:
            surf, dd, g = self._surface(phase, d, group, 0)
            scale = attended_fraction(seq, w) if phase == "context" else min(w, seq) / seq
        if surf is None:
            return None
        t, inside = surf(bh, seq)
        scale *= (d + dv) / (2.0 * dd)  # FLOPs and bytes grow with the head dims
        exact = inside and dd == d and dv == d and g == group and scale == 1.0
        return t * scale, exact
