"""Output for people: tables never cut when piped, numbers without scientific notation,
memory in GiB, choices listed and completed, completion on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from moesim.cli.main import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
SCI = re.compile(r"\d[eE][+-]\d")


def test_piped_tables_are_not_cut() -> None:
    res = runner.invoke(app, ["memory", str(ROOT / "scenarios/qwen3-30b-a3b-16xh100.yaml")])
    assert res.exit_code == 0, res.output
    assert "…" not in res.stdout  # rich cuts cells to "12.…" at 80 columns
    assert "GiB" in res.stdout and " GB" not in res.stdout


def test_check_numbers_in_engineering_notation(tmp_path: Path) -> None:
    res = runner.invoke(app, ["check", "automodel-qwen3-30b-8gpu-h100-bf16", "--fidelity",
                              "analytic", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert not SCI.search(res.stdout), res.stdout
    assert "12.04k" in res.stdout  # 12,040 tokens/s/GPU published
    assert "…" not in res.stdout


def test_capacity_speaks_in_tokens_not_exponents(monkeypatch: pytest.MonkeyPatch) -> None:
    # the plan tests' closed-form fake engine keeps this to a second
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "unit" / "plan"))
    res = runner.invoke(app, ["capacity", str(ROOT / "scenarios/mixtral-8x7b-64xh100.yaml"),
                              "--tokens", "1T", "--days", "365", "--workers", "1",
                              "--memory", "plan_fakes:memory", "--evaluator", "plan_fakes:evaluate"])
    assert res.exit_code == 0, res.output
    assert "1T tokens" in res.stdout and not SCI.search(res.stdout), res.stdout


@pytest.mark.parametrize(("command", "option", "listed"), [
    (["run"], "--fidelity", "des|analytic"),
    (["check"], "--fidelity", "des|analytic"),
    (["plan"], "--objective", "throughput|cost"),
    (["collective"], "--op", "all_reduce|all_gather"),
])
def test_choices_are_listed(command: list[str], option: str, listed: str) -> None:
    res = runner.invoke(app, [*command, "--help"], terminal_width=200)
    assert res.exit_code == 0 and listed in res.stdout, res.stdout


def test_a_bad_choice_is_one_line() -> None:
    res = runner.invoke(app, ["run", "--fidelity", "exact"])
    assert res.exit_code == 2
    assert res.stderr.strip() == ("moesim: error: moesim run: Invalid value for '--fidelity': "
                                  "'exact' is not valid; valid: des, analytic; see "
                                  "`moesim run --help`")


def test_shell_completion_is_on() -> None:
    res = runner.invoke(app, ["--help"], terminal_width=200)
    assert "--install-completion" in res.stdout and "--show-completion" in res.stdout
