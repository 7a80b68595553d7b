"""The CLI boundary: every error a user or the environment can cause is one line (exit 2),
a bug is one line saying so (exit 70), ``--debug`` shows the traceback; output names stay
inside the output root."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from moesim.cli.main import app

runner = CliRunner()
CLI = [sys.executable, "-c", "from moesim.cli.main import app; app()"]


def _line(result, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    text = result.output.strip()
    assert "Traceback" not in text and len(text.splitlines()) == 1, text
    assert text.startswith("moesim: error: ") and len(text) < 500, text
    return text


@pytest.mark.parametrize("args, expect", [
    (["routing", "scenarios/default.yaml", "--draws", "-1"], "--draws"),
    (["routing", "scenarios/default.yaml", "--draws", "0"], "--draws"),
    (["routing", "scenarios/default.yaml", "--micro-batches", "abc"], "--micro-batches"),
    (["run", "--bogus"], "No such option: --bogus"),
    (["nope"], "No such command 'nope'"),
    (["memory"], "Missing argument"),
])
def test_option_errors_are_one_line(root, args, expect, monkeypatch):
    monkeypatch.chdir(root)
    line = _line(runner.invoke(app, args))
    assert expect in line and "see `moesim" in line


def test_option_error_in_a_subprocess_is_one_line(root):
    p = subprocess.run([*CLI, "routing", "scenarios/default.yaml", "--draws", "-1"],
                       cwd=root, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and p.stdout == ""
    assert len(p.stderr.strip().splitlines()) == 1 and "--draws" in p.stderr


def test_routing_options_go_through_the_work_cap(root, monkeypatch):
    monkeypatch.chdir(root)
    line = _line(runner.invoke(app, ["routing", "scenarios/default.yaml",
                                     "--micro-batches", "1000000000"]))
    assert "scenarios/default.yaml" in line and "lower --micro-batches or --draws" in line


def test_unwritable_output_is_one_line(root, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    line = _line(runner.invoke(app, ["run", str(root / "scenarios/default.yaml"), "--fidelity",
                                     "analytic", "--out", str(blocker / "sub")]))
    assert str(blocker) in line


def test_disk_full_is_one_line(root, tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    line = _line(runner.invoke(app, ["run", str(root / "scenarios/default.yaml"), "--fidelity",
                                     "analytic", "--out", str(tmp_path / "out")]))
    assert "No space left on device; free some space" in line
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "out").iterdir())


def test_a_bug_is_one_line_and_debug_shows_it(root, monkeypatch):
    import moesim.engine.simulation as sim

    def broken(self):
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr(sim.Simulation, "run", broken)
    args = ["run", str(root / "scenarios/default.yaml"), "--fidelity", "analytic"]
    line = _line(runner.invoke(app, args), 70)
    assert "internal error: ZeroDivisionError" in line and "--debug" in line
    res = runner.invoke(app, ["--debug", *args])
    assert isinstance(res.exception, ZeroDivisionError)


def _scenario_named(root: Path, tmp_path: Path, name: str) -> Path:
    text = (root / "scenarios/default.yaml").read_text()
    text = text.replace("name: default", f"name: {json.dumps(name)}")
    text = text.replace("topology: ../topologies/", f"topology: {root}/topologies/")
    text = text.replace("model: models/", f"model: {root}/scenarios/models/")
    f = tmp_path / "work" / "s.yaml"
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(text)
    return f


@pytest.mark.parametrize("name", ["../../x", "/tmp/moesim-abs-name", "..", "[/]bad[red"])
def test_scenario_name_never_leaves_the_output_root(root, tmp_path, name, monkeypatch):
    f = _scenario_named(root, tmp_path, name)
    cwd = tmp_path / "work" / "deep" / "cwd"
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    before = {p for p in tmp_path.rglob("*")}
    res = runner.invoke(app, ["run", str(f), "--fidelity", "analytic"])
    assert res.exit_code == 0, res.output
    new = {p for p in tmp_path.rglob("*")} - before
    reports = cwd / "reports"
    assert new and all(p == reports or reports in p.parents for p in new), sorted(new)
    assert not Path("/tmp/moesim-abs-name").exists()
    assert len(list(reports.iterdir())) == 1


def test_markup_in_names_is_printed_as_text(root, tmp_path, monkeypatch):
    f = _scenario_named(root, tmp_path, "[/]x[bold]")
    monkeypatch.chdir(tmp_path)
    for cmd in (["memory", str(f)], ["routing", str(f)]):
        res = runner.invoke(app, cmd)
        assert res.exit_code == 0 and "[/]x[bold]" in res.output, res.output


@pytest.mark.parametrize("content", [b"\xff\xfe", b"[" * 100_000, b'{"a": 1}', b""])
def test_report_of_a_bad_result_is_one_line(tmp_path, content):
    f = tmp_path / "result.json"
    f.write_bytes(content)
    line = _line(runner.invoke(app, ["report", str(f), "--out", str(tmp_path / "o")]))
    assert str(f) in line and "not a moesim result" in line


@pytest.mark.parametrize("size", ["1e300", "-5", "nan", "0", "inf", "lots"])
def test_collective_size_is_checked(root, size):
    line = _line(runner.invoke(app, ["collective", str(root / "topologies/dgx-h100-superpod.yaml"),
                                     "--op", "all_reduce", "--ranks", "8", "--size", size]))
    assert "--size" in line


def test_unwritable_sweep_out_is_one_line(root, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    sweep = tmp_path / "s.yaml"
    sweep.write_text(f"name: s\nbase: {root}/scenarios/default.yaml\n"
                     "axes: [{path: seed, values: [1]}]\n")
    line = _line(runner.invoke(app, ["sweep", str(sweep), "--workers", "1", "--out",
                                     str(blocker / "o")]))
    assert str(blocker) in line
