"""``moesim goodput`` and the goodput options of capacity/plan: output, and bad inputs as one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
QWEN = ROOT / "scenarios" / "qwen3-30b-a3b-8xh100.yaml"
MIXTRAL = ROOT / "scenarios" / "mixtral-8x7b-64xh100.yaml"
CLI = [sys.executable, "-c", "from moesim.cli.main import app; app()"]
FAKES = ["--workers", "1", "--memory", "plan_fakes:memory", "--evaluator", "plan_fakes:evaluate"]


def moesim(*args: str) -> subprocess.CompletedProcess[str]:
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "tests" / "unit" / "plan"),
                                         env.get("PYTHONPATH", "")])
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=120)


def test_goodput_json_with_stragglers(tmp_path: Path) -> None:
    f = tmp_path / "g.yaml"
    f.write_text("stragglers: {straggler_probability: 0.01, straggler_slowdown: 0.1}\n")
    r = moesim("goodput", str(QWEN), "--tokens", "1T", "--fidelity", "analytic", "--json",
               "--goodput", str(f))
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["devices"] == 8 and d["ideal_days"] < d["goodput_days"] < 1.1 * d["ideal_days"]
    assert d["p50_days"] <= d["p90_days"] and d["interval_simulated_s"] > 0
    assert d["goodput_cost_usd"] > d["ideal_cost_usd"] > 0 and d["goodput_energy_mwh"] > 0
    # The engine's straggler option (the analytic expectation per stage) and the closed-form
    # factor on the compute share agree.
    assert d["engine_straggler_step_ratio"] == pytest.approx(d["straggler_factor"], rel=2e-3)


def test_goodput_table() -> None:
    r = moesim("goodput", str(QWEN), "--tokens", "1T", "--fidelity", "analytic")
    assert r.returncode == 0, r.stderr
    for text in ("interruptions per day", "checkpoint interval", "days: ideal / goodput",
                 "p50 / p90", "energy MWh"):
        assert text in r.stdout


@pytest.mark.parametrize("text", [
    "checkpoint: {host_write_gbyte_per_s: 0}",
    "reliability: {sources: [{name: gpu, kind: accelerator, failures_per_unit_hour: -0.1}]}",
    "reliability: {restart_s: -5}",
    "pue: 0",
    "- just a list",
])
def test_bad_goodput_files_exit_2_with_one_line(tmp_path: Path, text: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(text + "\n")
    for cmd in (["goodput", str(QWEN), "--tokens", "1T", "--fidelity", "analytic"],
                ["capacity", str(MIXTRAL), "--tokens", "1B", "--days", "1", *FAKES,
                 "--out", str(tmp_path)]):
        r = moesim(*cmd, "--goodput", str(f))
        assert r.returncode == 2, (cmd, r.stdout, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("moesim: error: ") and "bad.yaml" in lines[0]


def test_ideal_and_goodput_exclude_each_other(tmp_path: Path) -> None:
    r = moesim("capacity", str(MIXTRAL), "--tokens", "1B", "--days", "1", *FAKES, "--ideal",
               "--goodput", str(ROOT / "topologies" / "goodput" / "defaults.yaml"))
    assert r.returncode == 2 and "--ideal and --goodput" in r.stderr


@pytest.mark.parametrize("tokens", ["0", "abc", "1e30"])
def test_bad_tokens_exit_2(tokens: str) -> None:
    r = moesim("goodput", str(QWEN), "--tokens", tokens)
    assert r.returncode == 2 and "--tokens" in r.stderr
