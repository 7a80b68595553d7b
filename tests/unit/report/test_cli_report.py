"""``moesim report``: re-render from a saved result; user errors are one line, exit 2."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from moesim.cli.main import app
from moesim.results.schema import SimulationResult

runner = CliRunner()


def test_report_rerenders_saved_result(result: SimulationResult, tmp_path: Path) -> None:
    src = tmp_path / "saved.json"
    src.write_text(result.to_json())
    out = tmp_path / "out"
    res = runner.invoke(app, ["report", str(src), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["plotly.min.js", "report.html",
                                                      "result.json", "summary.csv", "trace.json"]
    assert (out / "result.json").read_text() == result.to_json()
    assert "500.00 ms" in res.output


def test_default_out_is_the_results_folder(result: SimulationResult, tmp_path: Path) -> None:
    (tmp_path / "result.json").write_text(result.to_json())
    res = runner.invoke(app, ["report", str(tmp_path / "result.json")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "report.html").exists() and (tmp_path / "trace.json").exists()


def test_bad_result_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"scenario": "x"}')
    res = runner.invoke(app, ["report", str(bad)])
    assert res.exit_code == 2
    assert "not a moesim result" in res.output and "Traceback" not in res.output
    missing = runner.invoke(app, ["report", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2 and "cannot read the result" in missing.output
