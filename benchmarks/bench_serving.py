"""Speed of the serving simulation (plain script; prints its numbers).

Target (issue 16): 10,000 requests on a 16-node deployment in under 10 s on a 2-core machine.
Cases: DeepSeek-V3 with PD disaggregation on 16 H100 nodes (4 prefill nodes, EP32; 12 decode
nodes, EP96; DeepEP, TBO, CUDA graphs), Poisson arrivals of 2K-token prompts and 1K-token
outputs; and the aggregated Qwen3-30B-A3B example on one node. Each run is fresh (a new
pricer, its memo empty: the first iterations price their buckets). Run:
``python benchmarks/bench_serving.py``.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

from moesim.serving import simulate_serving
from moesim.specs.loader import load_scenario

ROOT = Path(__file__).resolve().parent.parent
DSV3 = ROOT / "scenarios" / "serving" / "deepseek-v3-96xh100-pd-ep.yaml"
QWEN = ROOT / "scenarios" / "serving" / "qwen3-30b-a3b-8xh100-aggregated.yaml"

CASES = [
    ("dsv3 PD 16 nodes (4 prefill EP32 + 12 decode EP96), 10,000 requests", DSV3,
     ["num_devices=128", "deployment.prefill.attention_dp_degree=32",
      "deployment.decode.attention_dp_degree=96", "workload.num_requests=10000",
      "workload.arrival.rate_per_s=80"]),
    ("qwen3-30b-a3b aggregated 1 node, 10,000 requests", QWEN,
     ["workload.num_requests=10000"]),
]


def main() -> None:
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")
    for label, path, sets in CASES:
        spec = load_scenario(path, sets)
        wall, cpu = time.perf_counter(), time.process_time()
        r = simulate_serving(spec)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        iters = sum(role.iterations for role in r.roles)
        print(f"{label}: {wall:.2f} s wall, {cpu:.2f} s CPU, {r.num_requests / cpu:,.0f} "
              f"requests per CPU second, {iters:,} iterations, {r.duration_s:,.0f} s simulated")


if __name__ == "__main__":
    main()
