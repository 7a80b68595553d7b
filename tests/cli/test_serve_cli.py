"""`moesim serve` and `moesim run` on a serving scenario: files in, files out; bad input is
one line and exit 2."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from moesim.cli.main import app

QWEN = "scenarios/serving/qwen3-30b-a3b-8xh100-aggregated.yaml"
FAST = ["--set", "model.num_layers=2", "--set", "workload.num_requests=40"]


def _one_line_exit_2(res) -> str:  # noqa: ANN001
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    return lines[0]


def test_serve_writes_the_report_and_prints_percentiles(root, tmp_path):
    res = CliRunner().invoke(app, ["serve", str(root / QWEN), *FAST, "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "TTFT mean / p50 / p90 / p99" in res.output and "goodput" in res.output
    for name in ("result.json", "summary.csv", "requests.csv", "iterations.csv",
                 "report.html", "plotly.min.js"):
        assert (tmp_path / name).stat().st_size > 0, name
    data = json.loads((tmp_path / "result.json").read_text())
    assert data["kind"] == "serving" and data["completed"] == 40
    html = (tmp_path / "report.html").read_text()
    from moesim.report.serving import serving_figure_div_ids

    assert all(f'id="{i}"' in html for i in serving_figure_div_ids())
    assert (tmp_path / "requests.csv").read_text().count("\n") == 41


def test_run_dispatches_on_the_workload_kind(root, tmp_path):
    res = CliRunner().invoke(app, ["run", str(root / QWEN), *FAST, "--out", str(tmp_path),
                                   "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["kind"] == "serving" and "requests" not in data


def test_serve_refuses_a_training_scenario(root, tmp_path):
    res = CliRunner().invoke(app, ["serve", str(root / "scenarios/default.yaml"),
                                   "--out", str(tmp_path)])
    assert "moesim run" in _one_line_exit_2(res)


def test_bad_serving_inputs_are_one_line(root, tmp_path):
    bad_trace = tmp_path / "t.csv"
    bad_trace.write_text("arrival_s,input_tokens,output_tokens\n0,-4,3\n")
    cases = [
        (["--set", "workload.slo.ttft_ms=0"], "workload.slo.ttft_ms=0"),
        (["--set", f"workload.arrival={{kind: trace, path: {bad_trace}}}",
          "--set", "workload.input_length=null", "--set", "workload.output_length=null"],
         "input_tokens=-4"),
        (["--set", "deployment.role.kv_cache_tokens=10"], "cannot hold one request"),
        (["--set", "workload.input_length={kind: fixed, tokens: 50000000}"],
         "fewer than the longest request's"),
    ]
    for sets, expect in cases:
        res = CliRunner().invoke(app, ["serve", str(root / QWEN), *FAST, *sets,
                                       "--out", str(tmp_path / "out")])
        assert expect in _one_line_exit_2(res), (sets, res.output)


def test_validate_takes_serving_scenarios_and_cases(root):
    res = CliRunner().invoke(app, ["validate", "--json", str(root / QWEN),
                                   str(root / "scenarios/serving/deepseek-v3-96xh100-pd-ep.yaml"),
                                   str(root / "scenarios/published/sglang-dsv3-96xh100-pd-ep.yaml")])
    assert res.exit_code == 0, res.output
    kinds = [row["kind"] for row in json.loads(res.stdout)]
    assert kinds == ["scenario", "scenario", "case:serving"]


def test_report_rerenders_a_serving_result(root, tmp_path):
    res = CliRunner().invoke(app, ["serve", str(root / QWEN), *FAST, "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    (tmp_path / "report.html").unlink()
    res = CliRunner().invoke(app, ["report", str(tmp_path / "result.json")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "report.html").exists() and "TTFT" in res.output
