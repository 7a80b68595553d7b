"""Small serving scenarios for fast tests: Qwen3-30B-A3B cut to 2 layers on H100 nodes."""

from __future__ import annotations

from pathlib import Path

from moesim.specs.loader import load_scenario

ROOT = Path(__file__).resolve().parents[3]
AGGREGATED = ROOT / "scenarios" / "serving" / "qwen3-30b-a3b-8xh100-aggregated.yaml"
PD_EP = ROOT / "scenarios" / "serving" / "deepseek-v3-96xh100-pd-ep.yaml"
SMALL = ("model.num_layers=2",)
# Two roles of one node each (16 devices): prefill DP8/EP8 DeepEP normal, decode DP8/EP8
# DeepEP low-latency with CUDA graphs.
DISAGGREGATED = (
    "num_devices=16",
    "deployment={kind: disaggregated, prefill: {attention_dp_degree: 8, max_batch_tokens: 4096,"
    " dispatcher: deepep_normal}, decode: {attention_dp_degree: 8, max_batch_requests: 64,"
    " dispatcher: deepep_low_latency, cuda_graph: true}}",
)


def scenario(*sets: str, disaggregated: bool = False, base: Path = AGGREGATED):
    """The aggregated Qwen3 example, 2 layers, with ``sets`` applied (``disaggregated``: the
    two one-node roles above first)."""
    extra = DISAGGREGATED if disaggregated else ()
    return load_scenario(base, (*SMALL, *extra, *sets))
