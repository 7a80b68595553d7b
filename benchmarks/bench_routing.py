"""Speed of routing draws for a whole training step (plain script; prints its numbers).

Target (issue 4): a DeepSeek-V3 step -- 58 MoE layers, 256 experts, top-8, EP64 over 8 nodes,
120 micro-batches of one 4096-token sequence (GBS 15360 / DP 128) -- in under 1 s. The step
draws ``DEFAULT_DRAWS_PER_LAYER`` independent micro-batches per layer and cycles them (see
moesim/routing/step.py). Run: ``python benchmarks/bench_routing.py``.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

from moesim.routing import draw_step_routing
from moesim.routing.step import DEFAULT_DRAWS_PER_LAYER
from moesim.specs.loader import load_scenario

ROOT = Path(__file__).resolve().parent.parent
DSV3 = ROOT / "scenarios" / "deepseek-v3-2048xh800.yaml"
MIXTRAL = ROOT / "scenarios" / "mixtral-8x7b-64xh100.yaml"

CASES = [
    ("dsv3 node-limited M=4, multinomial", DSV3, []),
    ("dsv3 plain top-8, multinomial", DSV3, ["routing.max_nodes_per_token=null"]),
    ("dsv3 top-8, zipf 1.0, CF 1.25 (per-expert path)", DSV3,
     ["routing.max_nodes_per_token=null", "routing.load={kind: zipf, exponent: 1.0}",
      "routing.capacity_factor=1.25"]),
    ("dsv3 top-8 + 64 redundant experts, zipf 1.0", DSV3,
     ["routing.max_nodes_per_token=null", "routing.load={kind: zipf, exponent: 1.0}",
      "routing.num_redundant_experts=64"]),
    ("mixtral 8x7b EP8, multinomial", MIXTRAL, ["routing.load={kind: multinomial}"]),
]


def best_of(fn: Callable[[], object], repeats: int = 3) -> tuple[float, float]:
    """(best wall seconds, best process CPU seconds): CPU time is less hit by a busy machine."""
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return min(wall), min(cpu)


def main() -> None:
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}, python {platform.python_version()}, "
          f"draws per layer {DEFAULT_DRAWS_PER_LAYER}")
    for name, path, sets in CASES:
        spec = load_scenario(path, sets)
        r = draw_step_routing(spec)
        wall, cpu = best_of(lambda spec=spec: draw_step_routing(spec))
        layers, mbs = r.recv_tokens.shape[:2]
        print(f"{name:50s} L={layers:3d} M={mbs:4d} EP={r.ep:3d}  wall {wall * 1e3:7.1f} ms  "
              f"cpu {cpu * 1e3:7.1f} ms  max/mean {r.max_over_mean():.3f}  "
              f"drop {r.drop_fraction:.4f}")
    if "--all-draws" in sys.argv:  # every micro-batch its own draw (about 15x the default)
        spec = load_scenario(DSV3)
        wall, cpu = best_of(lambda: draw_step_routing(spec, num_draws_per_layer=120), repeats=1)
        print(f"{'dsv3 node-limited, all 120 micro-batches drawn':50s} wall {wall:.1f} s  "
              f"cpu {cpu:.1f} s")


if __name__ == "__main__":
    main()
