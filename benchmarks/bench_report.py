"""Benchmark: write_report for a DeepSeek-V3-on-2048-H800-sized result (target < 5 s, HTML < 10 MB).

The result is synthetic but has the real sizes (scenarios/deepseek-v3-2048xh800.yaml): 61
layers split [3, 4 x 14, 2] over 16 pipeline stages (stage 0 holds the 3 dense layers), 256
routed experts over EP64, 2048 devices (DP128), 15360 sequences / DP128 = 120 micro-batches
per step, and one trace event per op (about 96k). Run:

    python benchmarks/bench_report.py [--out DIR] [--result result.json]

``--result`` times a real saved result instead of the synthetic one.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from moesim.report import write_report
from moesim.report.render import render_html, summary_csv
from moesim.report.trace import chrome_trace_json
from moesim.results.schema import (
    BreakdownResult,
    LinkUsageResult,
    MemoryRankResult,
    RankClassMemoryResult,
    RoutingLayerResult,
    RoutingResult,
    SimulationResult,
    TraceEventResult,
)
from moesim.units import GB, MB

LAYER_SPLIT = [3] + [4] * 14 + [2]  # scenarios/deepseek-v3-2048xh800.yaml
NUM_EXPERTS = 256
EP = 64
PP = 16
DEVICES = 2048
MICRO_BATCHES = 15360 // (DEVICES // PP)  # GBS / DP = 120
TOKENS_PER_MB = 4096  # sequence length, micro-batch size 1
TOP_K = 8
H800_HBM_BYTES = 80 * GB  # H800 SXM: 80 GB HBM (hardware reference, H800-notes)


def _stage_events(rng: np.random.Generator, stage: int) -> list[TraceEventResult]:
    """One stage's ops: per micro-batch, layer and pass, compute and EP comm in sequence."""
    rc = f"pp{stage}"
    out: list[TraceEventResult] = []
    t_comp = t_ep = 0.02 * stage
    moe = stage > 0

    def add(stream: str, name: str, kind: str, t: float, dur: float, **args) -> float:
        out.append(TraceEventResult.model_construct(
            rank_class=rc, stream=stream, name=name, kind=kind, start_s=t, duration_s=dur,
            args=args))
        return t + dur

    for mb in range(MICRO_BATCHES):
        for phase in ("fwd", "bwd"):
            scale = 2.0 if phase == "bwd" else 1.0
            for layer in range(LAYER_SPLIT[stage]):
                tag = f"{phase} mb{mb} L{layer}"
                if phase == "bwd" and moe:
                    t_comp = add("compute", f"recompute {tag}", "recompute", t_comp, 1e-4)
                t_comp = add("compute", f"attention {tag}", "attention", t_comp,
                             scale * rng.uniform(4e-4, 6e-4), shape="4096x7168")
                if not moe:
                    t_comp = add("compute", f"dense_mlp {tag}", "dense_mlp", t_comp, scale * 3e-4)
                    continue
                t_comp = add("compute", f"router {tag}", "router", t_comp, 2e-5)
                t_ep = add("comm_ep", f"dispatch {tag}", "ep_dispatch", max(t_ep, t_comp),
                           rng.uniform(3e-4, 5e-4), bytes=4096 * 8 * 7168.0, group="ep64")
                t_comp = add("compute", f"shared_expert {tag}", "shared_expert", t_comp, 1e-4)
                t_comp = add("compute", f"experts {tag}", "experts", max(t_comp, t_ep),
                             scale * rng.uniform(6e-4, 9e-4), shape="512x7168x2048")
                t_ep = add("comm_ep", f"combine {tag}", "ep_combine", max(t_ep, t_comp),
                           rng.uniform(3e-4, 5e-4), bytes=4096 * 8 * 7168.0, group="ep64")
            add("comm_pp", f"send {phase} mb{mb}", "pp", t_comp, 1e-4, bytes=4096 * 7168.0)
    add("comm_dp", "grad reduce-scatter", "dp", max(t_comp, t_ep), 0.3, bytes=2.4e9)
    return out


def synthetic_result(seed: int = 0) -> SimulationResult:
    """A DeepSeek-V3 / 2048 x H800 sized result (see the module docstring)."""
    rng = np.random.default_rng(seed)
    trace = [e for s in range(PP) for e in _stage_events(rng, s)]
    step = max(e.start_s + e.duration_s for e in trace)
    flops = 400e12 * step * DEVICES  # synthetic: 400 TFLOP/s per device (DSV3-like), MFU below
    tokens_per_expert = TOKENS_PER_MB * TOP_K / NUM_EXPERTS  # 128 per micro-batch on average
    layers = [RoutingLayerResult(
        layer=3 + i, tokens_per_expert=rng.poisson(tokens_per_expert, NUM_EXPERTS).astype(float).tolist(),
        max_tokens_per_rank=0.0, mean_tokens_per_rank=tokens_per_expert * NUM_EXPERTS / EP,
        drop_fraction=0.0, intra_node_bytes_per_rank=1e8, inter_node_bytes_per_rank=3e8)
        for i in range(58)]
    memory = [RankClassMemoryResult(rank_class=f"pp{s}", multiplicity=DEVICES // PP,
                                    memory=MemoryRankResult(
        breakdown_bytes={"weights": 20e9, "optimizer": 15e9, "activations": 30e9 + 1e9 * s},
        peak_bytes=65e9 + 1e9 * s, capacity_bytes=H800_HBM_BYTES,
        headroom_bytes=H800_HBM_BYTES - 65e9 - 1e9 * s, fits=True)) for s in range(PP)]
    links = [LinkUsageResult(link=f"gpu{i}-nvswitch", tier="nvlink", capacity_bytes_per_s=200e9,
                             utilization=float(rng.uniform(0, 0.6)), bytes=1e10)
             for i in range(DEVICES)]
    links += [LinkUsageResult(link=f"gpu{i}-nic", tier="infiniband", capacity_bytes_per_s=50e9,
                              utilization=float(rng.uniform(0, 0.9)), bytes=1e10)
              for i in range(DEVICES)]
    return SimulationResult(
        scenario="deepseek-v3-2048xh800 (synthetic)", fidelity="des", num_devices=DEVICES,
        step_time_s=step, tokens_per_step=15360 * 4096, tokens_per_s=15360 * 4096 / step,
        tokens_per_s_per_device=15360 * 4096 / step / DEVICES, model_flops_per_step=flops,
        model_tflops_per_device=400.0, mfu=400.0 / 989.0,  # H800 = H100 die, 989 TFLOP/s BF16 dense (hardware reference, MLE-acc)
        breakdown=BreakdownResult(compute_s={"attention": step * 0.4, "experts": step * 0.3},
                                  exposed_communication_s={"ep_dispatch": step * 0.1},
                                  pipeline_bubble_s=step * 0.2),
        memory=memory, fits_memory=True, most_loaded_rank_class="pp15",
        routing=RoutingResult(layers=layers, imbalance_max_over_mean=1.2,
                              dispatch_traffic_bytes=(rng.uniform(0, 2, (EP, EP)) * MB).tolist()),
        links=links, trace=trace, parallelism={"expert_parallel_degree": EP,
                                               "pipeline_parallel_degree": PP})


def _timed(label: str, fn) -> object:
    """Run ``fn`` and print its wall and CPU seconds (CPU time barely moves with load)."""
    t0, c0 = time.perf_counter(), time.process_time()
    value = fn()
    print(f"  {label:<22} {time.perf_counter() - t0:6.2f} s wall {time.process_time() - c0:6.2f} s CPU")
    return value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="keep the report in this folder")
    ap.add_argument("--result", type=Path, default=None, help="a saved result.json to time")
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs "
          "(other work on the machine slows every number below)")
    t0 = time.perf_counter()
    result = (SimulationResult.from_json(args.result.read_text()) if args.result
              else synthetic_result())
    print(f"built result in {time.perf_counter() - t0:.2f} s: {len(result.trace):,} trace events, "
          f"{len(result.routing.layers)} MoE layers, {len(result.links):,} links")
    print("parts (each alone):")
    _timed("result.json", result.to_json)
    _timed("summary.csv", lambda: summary_csv(result))
    _timed("trace.json", lambda: chrome_trace_json(result))
    _timed("report.html", lambda: render_html(result))
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        t0, c0 = time.perf_counter(), time.process_time()
        paths = write_report(result, out)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"write_report: {wall:.2f} s wall, {cpu:.2f} s CPU (target < 5 s)")
        for key, p in paths.items():
            print(f"  {key:<8} {p.stat().st_size / MB:8.2f} MB  {p.name}")
        html_mb = paths["html"].stat().st_size / MB
        print(f"report.html {html_mb:.2f} MB (target < 10 MB)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
