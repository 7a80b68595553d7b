"""`moesim check`: rich table and per-category errors, --json, the HTML page, bad input as one
line with exit code 2. Small case files keep it fast; the whole suite runs in
tests/validation/test_check_suite.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from moesim.cli.main import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = ROOT / "scenarios" / "published"
DEEPEP = PUBLISHED / "deepep-v1-normal-h800.yaml"
NCCL = PUBLISHED / "nccl-h100-nvlink-maintainer.yaml"


def _run(*args: str):
    return runner.invoke(app, ["check", *args])


def _one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    text = result.output.strip()
    assert "Traceback" not in text and len(text.splitlines()) == 1, text
    assert text.startswith("moesim: error: ")
    return text


def test_json_rows_and_summary(tmp_path: Path) -> None:
    result = _run(str(DEEPEP), str(NCCL), "--json", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert len(data["rows"]) == 8 + 2
    by_label = {r["label"]: r for r in data["rows"]}
    ep8 = by_label["EP8 dispatch"]
    assert ep8["published"] == 153.0 and ep8["units"] == "GB/s (NVLink)"
    # error_pct is the signed error of the prediction against the published value
    assert ep8["error_pct"] == pytest.approx(100 * (ep8["predicted"] - 153.0) / 153.0)
    cats = {s["category"]: s for s in data["summary"]}
    assert set(cats) == {"ep_alltoall", "collective_bandwidth"}
    assert cats["ep_alltoall"]["num_points"] == 8 and cats["ep_alltoall"]["num_held_out"] == 4
    assert Path(data["html"]).is_file()


def test_html_page_is_offline_with_plotly_beside_it(tmp_path: Path) -> None:
    result = _run(str(NCCL), "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "mean absolute error per category" in result.output
    page = (tmp_path / "check.html").read_text(encoding="utf-8")
    # the page loads plotly.min.js from its own folder; nothing is fetched from a network
    assert "plotly.js v" not in page and "<script src='plotly.min.js'" in page
    assert "plotly.js v" in (tmp_path / "plotly.min.js").read_text(encoding="utf-8")[:200]
    assert "fig-check-scatter" in page and "identity" in page and "10% band" in page
    assert '"type":"log"' in page.replace(" ", "")


def test_folder_is_searched_recursively(tmp_path: Path) -> None:
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    text = NCCL.read_text().replace("../../topologies/", f"{ROOT / 'topologies'}{os.sep}")
    (nested / "case.yaml").write_text(text)
    result = _run(str(tmp_path), "--json", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)["rows"]) == 2


def test_missing_path_is_one_line() -> None:
    assert "file not found" in _one_line_error(_run("no/such/case.yaml"))


def test_bad_fidelity_is_one_line() -> None:
    assert "valid: des, analytic" in _one_line_error(_run(str(NCCL), "--fidelity", "exact"))


def test_bad_metric_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(NCCL.read_text().replace("metric: busbw_gbyte_per_s", "metric: busbw", 1))
    line = _one_line_error(_run(str(bad), "--out", str(tmp_path)))
    assert "metric='busbw'" in line and "valid: busbw_gbyte_per_s" in line


def test_scenario_metric_must_be_a_result_field(tmp_path: Path) -> None:
    src = PUBLISHED / "automodel-qwen3-30b-8gpu-h100-bf16.yaml"
    text = src.read_text().replace("../../topologies/", f"{ROOT / 'topologies'}{os.sep}")
    text = text.replace("../models/", f"{ROOT / 'scenarios' / 'models'}{os.sep}")
    bad = tmp_path / "s.yaml"
    bad.write_text(text.replace("metric: step_time_s", "metric: step_seconds"))
    line = _one_line_error(_run(str(bad), "--fidelity", "analytic", "--out", str(tmp_path)))
    assert "step_seconds" in line and "step_time_s" in line


def test_no_measured_points_is_one_line(tmp_path: Path) -> None:
    line = _one_line_error(_run(str(PUBLISHED / "switch-base-128-tpuv3-32core.yaml"),
                                "--out", str(tmp_path)))
    assert "no measured points" in line
