"""Fit the host cost of one timed ``torch.distributed`` call (TORCH_ONE_CALL_S).

Run: python benchmarks/fit_torch_call_overhead.py

Some published collective sweeps were taken with a PyTorch benchmark that, per trial, waits
on a barrier, records a CUDA event on an idle device, issues one ``dist.all_reduce`` and
records a second event (stas00/ml-engineering ``network/benchmarks/all_reduce_bench.py`` as
of 2026-08-04, which measured the H200 and B200 sweeps). The device sits idle while the host
goes through the call (Python, the process group, the NCCL enqueue) and while the ranks that
left the barrier last catch up, so the timed interval is the kernel plus a fixed cost per
call. nccl-tests, and the collector of the shipped tables, time back-to-back calls, where
that cost overlaps the previous call's kernel. A training step overlaps it the same way, so
the constant only serves comparisons against such sweeps (``timing: torch-one-call``).

Model: published time = measured-table time + c. The fit minimizes the squared relative time
error over the intra-node points timed that way inside the tables' measured sizes (where c is
identifiable; above 512 MiB it is < 0.1% of the time), closed form:
c = sum((t_pub - t_mod) / t_pub^2) / sum(1 / t_pub^2). Prints c, each point's busbw error
without and with c, and the leave-one-out error of each point (c refitted without it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from moesim.check.cases import load_case
from moesim.check.evaluate import evaluate_collective
from moesim.network.collectives import bus_factor
from moesim.network.efficiency import TORCH_ONE_CALL_S

ROOT = Path(__file__).resolve().parent.parent
CASES = ("mleng-h200-8gpu-allreduce-sweep.yaml", "mleng-b200-1node-vs-4node-allreduce.yaml")
MAX_FIT_BYTES = 512 * 2**20  # the tables' largest measured size


def points() -> list[tuple[str, float, float]]:
    """(label, published seconds, modelled seconds without the call cost) of the fit points."""
    out = []
    for name in CASES:
        path = ROOT / "scenarios" / "published" / name
        case = load_case(path)
        rows = {r.label: r for r in evaluate_collective(str(path), case, one_call_s=0.0)}
        for p in case.points:
            if (case.point_timing(p) != "torch-one-call" or p.algorithm is not None
                    or p.ranks is None or p.ranks > 8 or p.size_bytes > MAX_FIT_BYTES):
                continue
            m = p.measured[0]
            assert m.metric == "busbw_gbyte_per_s", m.metric
            moved = p.size_bytes * bus_factor(p.op, p.ranks) / 1e9  # GB over the bus
            out.append((f"{case.name}: {p.label}", moved / m.value,
                        moved / rows[p.label].predicted))
    return out


def fit(pub: np.ndarray, mod: np.ndarray) -> float:
    """Least-squares c of pub = mod + c in relative time error (closed form)."""
    w = 1.0 / pub**2
    return float(np.sum((pub - mod) * w) / np.sum(w))


def main() -> None:
    pts = points()
    pub = np.array([p[1] for p in pts])
    mod = np.array([p[2] for p in pts])
    c = fit(pub, mod)
    print(f"fit over {len(pts)} points: c = {c * 1e6:.1f} us per call "
          f"(moesim.network.efficiency.TORCH_ONE_CALL_S = {TORCH_ONE_CALL_S * 1e6:.1f} us)")
    print(f"  {'point':<66} {'pub us':>8} {'bare':>8} {'with c':>8} {'LOO c':>7} {'LOO':>8}")
    fit_err, loo_err = [], []
    for i, (label, tp, tm) in enumerate(pts):
        keep = np.arange(len(pts)) != i
        c_i = fit(pub[keep], mod[keep])
        bare, with_c, loo = tp / tm - 1, tp / (tm + c) - 1, tp / (tm + c_i) - 1
        fit_err.append(abs(with_c))
        loo_err.append(abs(loo))
        print(f"  {label:<66} {tp * 1e6:8.1f} {bare:+8.1%} {with_c:+8.1%} {c_i * 1e6:7.1f} "
              f"{loo:+8.1%}")
    print(f"  busbw error with c: mean {np.mean(fit_err):.1%}, worst {max(fit_err):.1%}; "
          f"leave-one-out mean {np.mean(loo_err):.1%}, worst {max(loo_err):.1%}")


if __name__ == "__main__":
    main()
