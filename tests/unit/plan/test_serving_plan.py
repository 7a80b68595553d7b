"""Deployment search for serving: the candidates, their ranking, the capacity question."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from moesim.cli.main import app
from moesim.plan.serving import _redundant, plan_serving, serving_candidates, serving_capacity
from moesim.specs.loader import load_scenario

ROOT = Path(__file__).resolve().parents[3]
QWEN = ROOT / "scenarios" / "serving" / "qwen3-30b-a3b-8xh100-aggregated.yaml"
PD = ROOT / "scenarios" / "serving" / "deepseek-v3-96xh100-pd-ep.yaml"
SMALL = ("model.num_layers=2", "workload.num_requests=60")


def test_redundant_experts_make_ep_divide():
    assert _redundant(256, 72, 32) == 32  # 288 = 4 x 72
    assert _redundant(256, 24, 0) == 8  # 264 = 11 x 24
    assert _redundant(256, 64, 0) == 0


def test_disaggregated_candidates_split_the_nodes():
    s = load_scenario(PD)
    cands = serving_candidates(s, 12)
    labels = [c.label for c in cands]
    assert "prefill 3 nodes (1 x EP24), decode 9 nodes (1 x EP72)" in labels
    for c in cands:
        dep = c.scenario.deployment
        assert dep.prefill.num_devices + dep.decode.num_devices == 96 == c.scenario.devices
        for role in (dep.prefill, dep.decode):
            assert (256 + role.num_redundant_experts) % role.ep == 0


def test_plan_ranks_by_goodput_per_device_and_capacity_finds_the_fewest_nodes():
    s = load_scenario(QWEN, SMALL)
    res = plan_serving(s, 2, requests=60)
    assert res.ranked and res.considered == 2 and res.objective == "goodput per device"
    assert [r.score for r in res.ranked] == sorted((r.score for r in res.ranked), reverse=True)
    cap = serving_capacity(s, attainment=0.5, max_nodes=2, requests=60)
    assert cap.nodes == 1 and list(cap.tried) == [1]


def test_plan_command_on_a_serving_scenario():
    res = CliRunner().invoke(app, ["plan", str(QWEN), "--devices", "8", "--requests", "40",
                                   "--json", *[a for x in SMALL for a in ("--set", x)]])
    assert res.exit_code == 0, res.output
    assert '"nodes": 1' in res.stdout and "goodput per device" in res.stdout
