"""Progress bars: drawn on stderr when it is a terminal, silent otherwise."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from moesim.cli import common
from moesim.cli.main import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def test_silent_when_not_a_terminal(tmp_path: Path) -> None:
    res = runner.invoke(app, ["check", str(ROOT / "scenarios/published/mamf-h100-bf16.yaml"),
                              "--fidelity", "analytic", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert res.stderr == ""  # CliRunner's streams are no terminal: no bar, no spinner


def test_drawn_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    buf = io.StringIO()
    monkeypatch.setattr(common, "err_console", Console(file=buf, force_terminal=True, width=100))
    with common.progress("screening layouts", total=4) as update:
        update(completed=2)
    assert "screening layouts" in buf.getvalue()


def test_plan_reports_each_phase(monkeypatch: pytest.MonkeyPatch) -> None:
    from moesim.plan.search import plan

    seen: list[tuple[str, int, int]] = []
    plan(ROOT / "scenarios/qwen3-30b-a3b-8xh100.yaml", analytic_budget=4, des_top=1,
         progress=lambda *a: seen.append(a))
    phases = [p for p, _, _ in seen]
    assert phases[0].startswith("screening") and phases[-1].startswith("simulating")
    assert any(p.startswith("ranking") for p in phases)
    assert all(0 <= done <= total for _, done, total in seen)
