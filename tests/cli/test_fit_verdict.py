"""One fit verdict for one spec: `moesim memory` and `moesim run` (both fidelities) assume
the same routing load, say which, and agree; a run that does not fit exits 3 unless
--allow-oom."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from moesim.cli.main import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "scenarios" / "default.yaml"  # Zipf-skewed routing: the hot EP rank matters
QWEN3 = ROOT / "scenarios" / "qwen3-235b-a22b-256xh100.yaml"
NO_FSDP = ["--set", "parallelism.fsdp=false"]  # gradients overflow the H100's HBM on pp0


def _peaks(classes: list[dict]) -> dict[str, float]:
    return {c["rank_class"]: c["memory"]["peak_bytes"] for c in classes}


def test_memory_and_run_agree_on_a_skewed_load(tmp_path: Path) -> None:
    mem = runner.invoke(app, ["memory", str(DEFAULT), "--json"])
    assert mem.exit_code == 0, mem.output
    report = json.loads(mem.stdout)
    assert "zipf load" in report["routing_load"] and "hottest EP rank" in report["routing_load"]
    assert any("/hot-ep" in c["rank_class"] for c in report["rank_classes"])
    for fidelity in ("analytic", "des"):
        run = runner.invoke(app, ["run", str(DEFAULT), "--fidelity", fidelity, "--json",
                                  "--out", str(tmp_path / fidelity)])
        assert run.exit_code == 0, run.output
        result = json.loads(run.stdout)
        assert _peaks(result["memory"]) == _peaks(report["rank_classes"])
        assert result["fits_memory"] is report["fits"] is True
        assert f"memory assumes {report['routing_load']}" in result["notes"]


def test_memory_says_the_load_it_assumes() -> None:
    res = runner.invoke(app, ["memory", str(QWEN3)])
    assert res.exit_code == 0, res.output
    assert "routing load: balanced routing" in res.stdout


def test_run_that_does_not_fit_exits_3(tmp_path: Path) -> None:
    mem = runner.invoke(app, ["memory", str(QWEN3), *NO_FSDP])
    assert mem.exit_code == 3
    run = runner.invoke(app, ["run", str(QWEN3), *NO_FSDP, "--fidelity", "analytic",
                              "--out", str(tmp_path / "oom")])
    assert run.exit_code == 3, run.output
    line = run.stderr.strip()
    assert len(line.splitlines()) == 1 and "does not fit" in line and "--allow-oom" in line
    assert (tmp_path / "oom" / "report.html").exists()  # the report is still written


def test_allow_oom_exits_0_with_a_warning(tmp_path: Path) -> None:
    run = runner.invoke(app, ["run", str(QWEN3), *NO_FSDP, "--fidelity", "analytic",
                              "--allow-oom", "--out", str(tmp_path / "oom")])
    assert run.exit_code == 0, run.output
    assert "moesim: warning:" in run.stderr and "does not fit" in run.stderr
