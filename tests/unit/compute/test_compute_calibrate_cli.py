"""`moesim calibrate coverage` on the shipped CPU table: coverage and efficiency report."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from moesim.cli.main import app
from moesim.compute import load_calibration

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "calibration" / "cpu-x86-fp32.json"

runner = CliRunner()
DIRS = ["--topologies", str(ROOT / "topologies"), "--scenarios", str(ROOT / "scenarios")]


def _run(*args: str):
    return runner.invoke(app, ["calibrate", "coverage", str(SHIPPED), *args, *DIRS])


def test_calibrate_self_reports_coverage_and_efficiency():
    res = _run("--accelerator", "self", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["dtype"] == "fp32"
    mixtral = [r for r in data["coverage"] if r["scenario"] == "mixtral-8x7b-64xh100"]
    assert {r["family"] for r in mixtral} == {"gemm", "grouped_gemm", "attention", "memory"}
    gemm = next(r for r in mixtral if r["family"] == "gemm")
    # Six forward GEMMs (qkv, attn_out, expert_up, expert_down, router, lm_head), each with
    # dgrad and wgrad: 18. Every one has a dimension of 4096 tokens or more, past the CPU
    # grid's m, n, k maxima (2048, 8192, 2048), so none is measured: all 18 are derived
    # (extrapolated from the grid) and all are named outside.
    assert (gemm["needed"], gemm["measured"], gemm["derived"], gemm["roofline"]) == (18, 0, 18, 0)
    assert "router" in gemm["outside"] and "lm_head.dgrad" in gemm["outside"]
    # The CPU table measured attention forward (seq 256..2048) but Mixtral's seq is 4096:
    # the forward is extrapolated at the last measured FLOP rate.
    att = next(r for r in mixtral if r["family"] == "attention")
    assert att["needed"] == 2 and att["roofline"] == 0
    eff = data["efficiency"]
    # Against its own measured maximum the best GEMM is exactly 1.0 of peak and no bin
    # exceeds it.
    assert all(0 < b["measured_median"] <= 1.0 for b in eff["gemm_bins"])
    assert 0 < eff["gemm_e_max"] <= 1.2


def test_calibrate_attaches_to_a_topology_accelerator(tmp_path):
    out = tmp_path / "attached.json"
    res = _run("--accelerator", "H100-SXM", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert "coverage" in res.output and "GEMM efficiency" in res.output
    table = load_calibration(out)
    assert table.accelerator == "H100-SXM"
    assert table.gemm == load_calibration(SHIPPED).gemm


def test_one_scenario_only():
    one = ROOT / "scenarios" / "mixtral-8x7b-64xh100.yaml"
    res = _run("--accelerator", "self", "--json", "--scenario", str(one))
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert {r["scenario"] for r in data["coverage"]} == {"mixtral-8x7b-64xh100"}


def test_unknown_accelerator_is_one_line_exit_2():
    res = _run("--accelerator", "nonesuch")
    assert res.exit_code == 2
    assert "valid:" in res.output and "H100-SXM" in res.output
