"""`moesim validate` also takes the published-measurement case files of `moesim check`."""

from __future__ import annotations

from typer.testing import CliRunner

from moesim.cli.main import app


def test_validate_every_published_file(root):
    files = sorted(str(p) for p in (root / "scenarios/published").glob("*.yaml"))
    res = CliRunner().invoke(app, ["validate", "--json", *files])
    assert res.exit_code == 0, res.output
    kinds = {row["kind"] for row in __import__("json").loads(res.stdout)}
    assert "scenario" in kinds and "case:collective" in kinds and "case:deepep" in kinds


def test_bad_case_file_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("case: collective\nname: x\nbogus_field: 1\n")
    res = CliRunner().invoke(app, ["validate", str(bad)])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "bad.yaml" in lines[0] and "Traceback" not in res.output
