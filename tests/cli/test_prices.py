"""Prices per device-hour: every shipped accelerator but GB300 has one, citing a dated public
price list; `plan --objective cost` names the accelerator that lacks one."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from moesim.cli.main import app
from moesim.specs.loader import load_topology

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
GB300 = ROOT / "scenarios/published/bridge-qwen3-30b-gb300-8gpu.yaml"
FAKE = ["--evaluator", "plan_fakes:evaluate", "--memory", "plan_fakes:memory"]


@pytest.mark.parametrize("path", sorted((ROOT / "topologies").glob("*.yaml")), ids=lambda p: p.stem)
def test_price_cites_a_dated_list(path: Path) -> None:
    topo = load_topology(path)
    text = path.read_text(encoding="utf-8")
    if topo.accelerator.name == "GB300":
        assert topo.price_per_device_hour is None and "No price_per_device_hour" in text
        return
    assert topo.price_per_device_hour is not None and topo.price_per_device_hour > 0
    comment = text[:text.index("price_per_device_hour:")].rsplit("\n\n", 1)[-1]
    assert "USD per" in comment and re.search(r"20\d\d", comment), comment


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "unit" / "plan"))


def test_cost_objective_names_the_unpriced_accelerator(fakes: None, tmp_path: Path) -> None:
    res = runner.invoke(app, ["plan", str(GB300), "--objective", "cost", "--workers", "1",
                              "--des-top", "0", "--out", str(tmp_path), *FAKE])
    assert res.exit_code == 0, res.output
    assert "moesim: warning: the GB300 (gb300-nvl72-superpod) has no price" in res.stderr
    assert "--price-per-device-hour" in res.stderr
    data = json.loads(runner.invoke(app, ["plan", str(GB300), "--objective", "cost", "--json",
                                          "--workers", "1", "--des-top", "0", "--out",
                                          str(tmp_path), *FAKE]).stdout)
    assert "GB300" in data["missing_price"]
    assert all(r["usd_per_million_tokens"] is None for r in data["top"])


def test_a_given_price_prices_every_layout(fakes: None, tmp_path: Path) -> None:
    res = runner.invoke(app, ["plan", str(GB300), "--objective", "cost", "--json", "--workers",
                              "1", "--des-top", "0", "--price-per-device-hour", "6",
                              "--out", str(tmp_path), *FAKE])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["missing_price"] is None
    # USD per Mtok = devices x price / 3600 / tokens_per_s x 1e6
    for r in data["top"]:
        want = data["devices"] * 6 / 3600 / r["tokens_per_s"] * 1e6
        assert r["usd_per_million_tokens"] == pytest.approx(want)
