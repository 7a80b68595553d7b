"""Kernel cost model benchmarks: held-out accuracy on the shipped CPU table, hot-path speed.

Run: python benchmarks/bench_compute.py [calibration/cpu-x86-fp32.json]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from moesim.compute import KernelCostModel, load_calibration
from moesim.compute.fit import accelerator_from_table, heldout_gemm_errors
from moesim.specs.loader import load_topology

ROOT = Path(__file__).resolve().parent.parent
HELD_OUT = [("m", 64), ("m", 512), ("n", 1024), ("n", 4096), ("k", 1024)]


def heldout(path: Path) -> None:
    table = load_calibration(path)
    errs = heldout_gemm_errors(table, HELD_OUT)
    for (axis, value), e in errs.items():
        print(f"held-out {axis}={value:<5} n={e.size:3d} median {np.median(e):6.1%} "
              f"max {e.max():6.1%}")
    allv = np.concatenate(list(errs.values()))
    print(f"held-out all     n={allv.size:3d} median {np.median(allv):6.1%} "
          f"p90 {np.percentile(allv, 90):6.1%} max {allv.max():6.1%}")


def speed(path: Path) -> None:
    h100 = load_topology(ROOT / "topologies" / "dgx-h100-superpod.yaml").accelerator
    table = load_calibration(path)
    rng = np.random.default_rng(0)
    tokens = rng.multinomial(8192 * 8, np.full(32, 1 / 32), size=64)  # [R=64, E=32]
    for label, model in (("roofline H100", KernelCostModel(h100, "bf16")),
                         ("calibrated CPU", KernelCostModel(accelerator_from_table(table),
                                                            "fp32", table))):
        reps = 2000
        t0 = time.perf_counter()
        for _ in range(reps):
            model.grouped_gemm_many(tokens, 4096, 7168)
        dt = (time.perf_counter() - t0) / reps
        t0 = time.perf_counter()
        for i in range(20000):
            model.gemm(4096, 6144 + (i % 8), 4096)
        gemm = (time.perf_counter() - t0) / 20000
        print(f"{label:15s} grouped_gemm_many [64 x 32]: {dt * 1e6:7.1f} us/call; "
              f"memoized gemm: {gemm * 1e6:5.2f} us/call")


if __name__ == "__main__":
    p = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "calibration" / "cpu-x86-fp32.json"
    heldout(p)
    speed(p)
