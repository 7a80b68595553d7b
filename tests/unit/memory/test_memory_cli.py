"""``moesim memory``: the table, the JSON, and the one-line error with exit code 2."""

from __future__ import annotations

import json

from memory_cases import MIXTRAL, QWEN3
from typer.testing import CliRunner

from moesim.cli.main import app

runner = CliRunner()


def test_table_for_a_layout_that_fits():
    res = runner.invoke(app, ["memory", str(MIXTRAL)])
    assert res.exit_code == 0, res.output
    assert "pp0" in res.output and "fits; most loaded: pp0" in res.output


def test_json_matches_the_report_and_sums():
    res = runner.invoke(app, ["memory", str(MIXTRAL), "--json"])
    assert res.exit_code == 0
    data = json.loads(res.stdout)
    assert data["fits"] is True and len(data["rank_classes"]) == 4
    mem = data["rank_classes"][0]["memory"]
    assert abs(sum(mem["breakdown_bytes"].values()) - mem["peak_bytes"]) < 1.0


def test_set_override_reaches_the_model_and_overflow_is_exit_3():
    res = runner.invoke(app, ["memory", str(QWEN3), "--set", "parallelism.fsdp=false"])
    assert res.exit_code == 3
    line = res.stderr.strip()
    assert line.startswith(f"moesim: error: {QWEN3}: pp0: ") and "gradients" in line  # names the file
    assert "\n" not in line


def test_bad_file_is_one_line_exit_2():
    res = runner.invoke(app, ["memory", "no-such-scenario.yaml"])
    assert res.exit_code == 2 and "file not found" in res.stderr
