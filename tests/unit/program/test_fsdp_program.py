"""ZeRO-3 / FSDP2 program: per-use parameter all-gathers instead of one gather per step."""

from __future__ import annotations

from pathlib import Path

import pytest

from moesim.program import build_program
from moesim.program.context import layer_param_shards
from moesim.program.ops import CollectiveShape
from moesim.specs.loader import load_scenario

ROOT = Path(__file__).resolve().parents[3]
MIXTRAL = ROOT / "scenarios" / "mixtral-8x7b-64xh100.yaml"
# 4 devices, TP = PP = 1: DP = 4; EP 1 -> EDP = 4; EP 4 -> EDP = 1.
BASE = ("num_devices=4", "topology_overrides={}", "parallelism.tensor_parallel_degree=1",
        "parallelism.pipeline_parallel_degree=1", "parallelism.pipeline_schedule={kind: 1f1b}",
        "workload.global_batch_size=8", "model.num_layers=2", "routing.load.kind=balanced")


def _program(*sets: str):
    return build_program(load_scenario(MIXTRAL, BASE + sets))


@pytest.mark.parametrize("ep,expert_gathers", [(1, True), (4, False)])
def test_fsdp_regathers_every_unit(ep: int, expert_gathers: bool) -> None:
    prog = _program("parallelism.fsdp=true", f"parallelism.expert_parallel_degree={ep}")
    ctx = prog.context
    (chunk,) = prog.chunks
    assert chunk.param_gather == ()  # no once-per-step gather under FSDP
    names = [op.name for op in chunk.param_regather]
    layer_names = [n for n in names if n.startswith("L")]
    # Embedding first, one dense gather per layer (+ experts over EDP when EDP > 1), LM head.
    assert names[0] == "embedding.fsdp_ag" and names[-1] == "lm_head.fsdp_ag"
    assert len(layer_names) == 2 * (2 if expert_gathers else 1)
    dense, expert = layer_param_shards(ctx, 0)
    by_name = {op.name: op.shape for op in chunk.param_regather}
    shape = by_name["L0.fsdp_ag"]
    assert isinstance(shape, CollectiveShape) and shape.op == "all_gather" and shape.axis == "dp"
    assert shape.size_bytes == pytest.approx(dense * 2.0)  # BF16 parameters, full unit
    if expert_gathers:
        assert by_name["L0.fsdp_edp_ag"].size_bytes == pytest.approx(expert * 2.0)


def test_zero1_gathers_once_per_step() -> None:
    prog = _program("parallelism.zero_stage=1", "parallelism.expert_parallel_degree=1")
    (chunk,) = prog.chunks
    assert chunk.param_regather == ()
    assert [op.name for op in chunk.param_gather] == [
        "L0.dp_param_ag", "L0.edp_param_ag", "L1.dp_param_ag", "L1.edp_param_ag"]
