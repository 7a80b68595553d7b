"""`moesim check DIR`: a failing case is recorded with its one-line message and the rest of
the folder is still checked (exit 2 at the end)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from moesim.check.suite import run_check
from moesim.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
NCCL = ROOT / "scenarios" / "published" / "nccl-h100-nvlink-maintainer.yaml"


def _folder(tmp_path: Path) -> Path:
    d = tmp_path / "cases"
    d.mkdir()
    text = NCCL.read_text(encoding="utf-8").replace("../../topologies/", f"{ROOT}/topologies/")
    (d / "b-good.yaml").write_text(text, encoding="utf-8")
    (d / "a-bad.yaml").write_text(text.replace("metric: busbw_gbyte_per_s", "metric: busbw", 1),
                                  encoding="utf-8")
    (d / "c-broken.yaml").write_bytes(b"case: x\n\xff\xfe\n")
    return d


def test_run_check_records_failures_and_finishes(tmp_path: Path) -> None:
    report = run_check([_folder(tmp_path)], fidelity="analytic")
    assert len(report.rows) == 2  # the good file's two points
    failed = dict(report.failed)
    assert set(failed) == {str(tmp_path / "cases/a-bad.yaml"), str(tmp_path / "cases/c-broken.yaml")}
    assert all("\n" not in m and m.startswith(f) for f, m in failed.items())
    assert "metric='busbw'" in failed[str(tmp_path / "cases/a-bad.yaml")]


def test_cli_prints_the_table_and_each_failure(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["check", str(_folder(tmp_path)), "--json", "--out",
                                   str(tmp_path / "o")])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    errors = [ln for ln in lines if ln.startswith("moesim: error: ")]
    assert len(errors) == 2 and "Traceback" not in res.output
    data = json.loads("\n".join(ln for ln in lines if not ln.startswith("moesim: error: ")))
    assert len(data["rows"]) == 2 and len(data["failed"]) == 2
    assert (tmp_path / "o").is_dir()
