"""Runs that do not clobber each other: reports/<name>-<inputs hash>/, --out honoured,
result.json with its provenance; a check of a subset writes its own page."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import moesim
from moesim.cli.main import app
from moesim.specs.loader import load_scenario

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "qwen3-30b-a3b-8xh100.yaml"
EP4 = "parallelism.expert_parallel_degree=4"


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(*args: str) -> Path:
    res = runner.invoke(app, ["run", str(SCENARIO), "--fidelity", "analytic", *args])
    assert res.exit_code == 0, res.output
    (folder,) = {Path(line.split()[-1]).parent for line in res.stdout.splitlines()
                 if line.startswith("wrote ")}
    return folder


def test_each_input_gets_its_folder(cwd: Path) -> None:
    plain, ep4 = _run(), _run("--set", EP4)
    assert plain != ep4 and plain.parent == ep4.parent == Path("reports")
    assert plain.name.startswith("qwen3-30b-a3b-8xh100-") and len(plain.name.split("-")[-1]) == 10
    assert _run() == plain  # the same inputs: the same folder
    assert (cwd / plain / "result.json").is_file() and (cwd / ep4 / "result.json").is_file()
    assert _run("--out", "mine") == Path("mine")


def test_result_json_says_where_it_came_from(cwd: Path) -> None:
    folder = _run("--set", EP4)
    prov = json.loads((cwd / folder / "result.json").read_text(encoding="utf-8"))["provenance"]
    assert prov["overrides"] == [EP4] and prov["fidelity"] == "analytic"
    assert prov["moesim_version"] == moesim.__version__
    assert folder.name.endswith(prov["inputs_hash"])
    table = ROOT / prov["calibration"]["path"]
    assert prov["calibration"]["shipped"] and table.parent.name == "calibration"
    assert prov["calibration"]["sha256"] == hashlib.sha256(table.read_bytes()).hexdigest()
    spec = load_scenario(SCENARIO, [EP4])
    assert prov["scenario"] == json.loads(spec.model_dump_json())
    assert prov["scenario"]["parallelism"]["expert_parallel_degree"] == 4


def test_check_of_a_subset_has_its_own_page(cwd: Path) -> None:
    res = runner.invoke(app, ["check", "mamf-h100-bf16", "--fidelity", "analytic"])
    assert res.exit_code == 0, res.output
    pages = sorted(p.relative_to(cwd).as_posix() for p in cwd.glob("reports/*/check.html"))
    assert len(pages) == 1 and pages[0].startswith("reports/check-mamf-h100-bf16-"), pages
    assert not (cwd / "reports" / "check").exists()  # the full suite's page is untouched
