"""``moesim run`` prints moesim.report's summary table and writes the report files."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from moesim.cli.main import app

ROOT = Path(__file__).resolve().parents[3]
SMALL = ["--set", "routing.load.kind=balanced",
         "--fidelity", "analytic"]


def test_run_prints_shared_summary(tmp_path: Path) -> None:
    out = tmp_path / "r"
    res = CliRunner().invoke(app, ["run", str(ROOT / "scenarios/mixtral-8x7b-64xh100.yaml"),
                                   *SMALL, "--out", str(out)])
    assert res.exit_code == 0, res.output
    # Rows of moesim.report.print_summary (render.headline_rows), not a table of run's own.
    assert "memory headroom" in res.output and "expert load max / mean" in res.output
    assert {p.name for p in out.iterdir()} >= {"result.json", "summary.csv", "report.html",
                                               "trace.json"}


def test_run_json_and_bad_fidelity(tmp_path: Path) -> None:
    path = str(ROOT / "scenarios/mixtral-8x7b-64xh100.yaml")
    res = CliRunner().invoke(app, ["run", path, *SMALL, "--json", "--out", str(tmp_path)])
    assert res.exit_code == 0
    assert json.loads(res.output)["fidelity"] == "analytic"
    bad = CliRunner().invoke(app, ["run", path, "--fidelity", "fast", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "valid: des, analytic" in bad.output
