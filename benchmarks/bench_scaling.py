"""How the DES step's cost grows: DeepSeek-V3 on 2048 H800 with more micro-batches and layers.

    python benchmarks/bench_scaling.py [--micro-batches 120 240 480 960]
                                       [--layers 61 125 253 381] [--no-trace]

Each point runs in its own process (so its peak RSS is its own): CPU seconds of the step
(``Simulation(...).run()``, trace on unless ``--no-trace``), the op intervals it ran, and the
process's peak RSS. Micro-batches grow through ``workload.global_batch_size`` (DP 128, MBS 1:
GBS = 128 x M); layers through ``model.num_layers`` with the 16 DualPipe stages split as
evenly as possible. The log-log slope of CPU seconds against the size is a least-squares fit
over the points (1.0: linear). Prints the load average first. The sizes stop where the
scenario work cap refuses a step (moesim.specs.work: routing draws of 2^25 numbers; 1,920
micro-batches or about 420 layers of this model reach it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "deepseek-v3-2048xh800.yaml"
PP = 16

CHILD = """
import json, resource, sys, time
from moesim.engine import Simulation
from moesim.specs.loader import load_scenario
sets, trace = json.loads(sys.argv[1]), sys.argv[2] == "1"
s = load_scenario(sys.argv[3], sets)
c = time.process_time()
sim = Simulation(s, trace=trace)
r = sim.run()
cpu = time.process_time() - c
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"cpu_s": cpu, "ops": sim.ops_simulated, "rss": rss, "step_s": r.step_time_s}))
"""


def layer_split(layers: int) -> list[int]:
    """DeepSeek-V3's 16 stages over ``layers``: as even as possible, the last one shortest."""
    q, r = divmod(layers, PP)
    return [q + 1 if i < r else q for i in range(PP)]


def run(sets: list[str], trace: bool) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(sets), "1" if trace else "0",
                          str(SCENARIO)], capture_output=True, text=True)
    if out.returncode:
        lines = (out.stderr or out.stdout).strip().splitlines()
        raise SystemExit(f"{' '.join(sets)}: exit {out.returncode}: {lines[-1] if lines else ''}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def slope(sizes: list[int], cpu: list[float]) -> float:
    return float(np.polyfit(np.log(sizes), np.log(cpu), 1)[0])


def sweep(label: str, sizes: list[int], sets_of, trace: bool) -> None:  # noqa: ANN001
    cpu = []
    for n in sizes:
        res = run(sets_of(n), trace)
        cpu.append(res["cpu_s"])
        print(f"{label} {n:6d}: cpu {res['cpu_s']:7.2f} s  ops {res['ops']:>12,.0f}  "
              f"peak RSS {res['rss'] / 2**30:5.2f} GiB  step {res['step_s']:.3f} s", flush=True)
    print(f"{label}: log-log slope of CPU seconds {slope(sizes, cpu):.3f} "
          f"({sizes[0]} to {sizes[-1]})", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--micro-batches", type=int, nargs="*", default=[120, 240, 480, 960])
    ap.add_argument("--layers", type=int, nargs="*", default=[61, 125, 253, 381])
    ap.add_argument("--no-trace", action="store_true")
    args = ap.parse_args()
    trace = not args.no_trace
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; trace {trace}")
    if args.micro_batches:
        sweep("micro-batches", args.micro_batches,
              lambda m: [f"workload.global_batch_size={128 * m}"], trace)
    if args.layers:
        sweep("layers", args.layers,
              lambda n: [f"model.num_layers={n}",
                         f"parallelism.pipeline_layer_split={layer_split(n)}"], trace)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
