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
    assert {"case:gemm", "case:grouped_gemm", "case:ratio"} <= kinds


def test_validate_reports_a_bad_low_latency_point_in_one_line(tmp_path, root):
    # A DeepEP point with an unknown mode is one SpecError line naming the dotted field.
    bad = tmp_path / "ll.yaml"
    bad.write_text(f"""case: deepep
name: ll
topology: {root / 'topologies' / 'h800-deepseek-2048.yaml'}
points:
  - label: EP8 dispatch
    num_ranks: 8
    phase: dispatch
    mode: ultra_low_latency
    measured: [{{metric: latency_us, value: 77, units: us, category: ep_alltoall, source: s}}]
""")
    res = CliRunner().invoke(app, ["validate", str(bad)])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "points.0.mode" in lines[0] and "Traceback" not in res.output


def test_bad_case_file_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("case: collective\nname: x\nbogus_field: 1\n")
    res = CliRunner().invoke(app, ["validate", str(bad)])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "bad.yaml" in lines[0] and "Traceback" not in res.output
