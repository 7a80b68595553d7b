"""Speed of the flow model: all-to-all-v with a random skewed traffic matrix on H100 pods.

Run: python benchmarks/bench_network.py [--gpus 1024 4096 16384 65536] [--stream]
Each size runs in a fresh process and prints the solve's CPU seconds (time.process_time),
wall seconds, the whole process's peak RSS (resource ru_maxrss: the traffic matrix
included), the load average (os.getloadavg) and the simulated all-to-all-v time and algbw.

The traffic is float32 (a 16,384-GPU float64 matrix alone would be 2 GiB): a dense matrix
generated before the solve, or, with --stream and always from 65,536 GPUs (a 16 GiB float32
matrix), generated row block by row block inside the solve through all_to_all_v_time's
``rows(start, stop)`` input; the generator's CPU time is then measured and subtracted. Both
give the same matrix (every row from its own seed). BLAS runs on one thread.
Targets: 1024 GPUs under 1 s, 4096 under 5 s, 16,384 under 2 s CPU and 2 GiB peak RSS
(docs/network.md records the measured numbers).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: one core, as measured

import resource  # noqa: E402

import numpy as np  # noqa: E402

from moesim.cluster import build_cluster  # noqa: E402
from moesim.cluster.synthetic import gpu_cluster  # noqa: E402
from moesim.network import all_to_all_v_time  # noqa: E402
from moesim.units import GB, GIB, MIB  # noqa: E402

STREAM_FROM = 65536  # sizes from which the matrix is never held whole


def skewed_rows(n: int, seed: int = 0):
    """Rows ``start:stop`` of the rank-to-rank bytes (float32): 4 MiB per pair on average
    (lognormal entries, sigma 1, mean e^0.5 before scaling) times Zipf-like hot destinations
    (weight ~ 1 / (1 + rank % 64)^0.5), the shape of an imbalanced MoE layer. Row i comes
    from its own seed (seed, i), so any cut into row blocks gives the same matrix."""
    hot = 1.0 / np.sqrt(1.0 + np.random.default_rng(seed).permutation(n) % 64)
    weight = (hot * (4 * MIB / (np.exp(0.5) * hot.mean()))).astype(np.float32)

    def rows(start: int, stop: int) -> np.ndarray:
        out = np.empty((stop - start, n), dtype=np.float32)
        for r, i in enumerate(range(start, stop)):
            rng = np.random.default_rng((seed, i))
            rng.standard_normal(out=out[r], dtype=np.float32)
        np.exp(out, out=out)
        out *= weight
        return out

    return rows


def skewed_traffic(n: int, seed: int = 0) -> np.ndarray:
    """The whole float32 matrix of ``skewed_rows``, filled block by block (no float64 copy)."""
    rows = skewed_rows(n, seed)
    t = np.empty((n, n), dtype=np.float32)
    step = max(1, (1 << 22) // n)
    for s in range(0, n, step):
        t[s:s + step] = rows(s, min(n, s + step))
    return t


def measure(num_gpus: int, stream: bool, repeats: int) -> dict:
    cluster = build_cluster(gpu_cluster("H100", num_gpus // 8), num_gpus)
    groups = [list(range(num_gpus))]
    gen = [0.0, 0.0]  # generator CPU and wall seconds
    if stream:
        rows = skewed_rows(num_gpus)

        def traffic(start: int, stop: int) -> np.ndarray:
            c0, w0 = time.process_time(), time.perf_counter()
            out = rows(start, stop)
            gen[0] += time.process_time() - c0
            gen[1] += time.perf_counter() - w0
            return out
    else:
        c0 = time.process_time()
        traffic = skewed_traffic(num_gpus)
        gen[0] = time.process_time() - c0
    best = (float("inf"), float("inf"))
    for _ in range(repeats):
        g0 = list(gen)
        c0, w0 = time.process_time(), time.perf_counter()
        res = all_to_all_v_time(cluster, groups, traffic)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        if stream:  # the generator ran inside the solve: not the solver's time
            cpu -= gen[0] - g0[0]
            wall -= gen[1] - g0[1]
        best = min(best, (cpu, wall))
    return {"gpus": num_gpus, "nodes": num_gpus // 8, "stream": stream, "cpu_s": best[0],
            "wall_s": best[1], "gen_cpu_s": gen[0] / (repeats if stream else 1),
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB,
            "loadavg": os.getloadavg(), "time_s": res.time_s,
            "algbw": res.algbw_bytes_per_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gpus", type=int, nargs="+", default=[1024, 4096, 16384])
    ap.add_argument("--stream", action="store_true",
                    help="generate the matrix in row blocks inside the solve at every size")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a child run
    args = ap.parse_args()
    if args.one:
        n = args.gpus[0]
        print(json.dumps(measure(n, args.stream or n >= STREAM_FROM, 3 if n <= 1024 else 1)))
        return
    for n in args.gpus:
        cmd = [sys.executable, __file__, "--one", "--gpus", str(n)] + (["--stream"] if
                                                                        args.stream else [])
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        la = "/".join(f"{x:.2f}" for x in r["loadavg"])
        src = "streamed" if r["stream"] else "dense"
        print(f"{n:6d} GPUs ({r['nodes']} nodes, {src} float32): solve {r['cpu_s']:.3f} s CPU, "
              f"{r['wall_s']:.3f} s wall, peak RSS {r['peak_rss_gib']:.2f} GiB, load avg {la}; "
              f"traffic generated in {r['gen_cpu_s']:.2f} s CPU; "
              f"{n * (n - 1) / r['cpu_s'] / 1e6:,.0f} M pairs/s; all-to-all-v "
              f"{r['time_s'] * 1e3:.2f} ms, algbw {r['algbw'] / GB:.1f} GB/s", flush=True)


if __name__ == "__main__":
    main()
