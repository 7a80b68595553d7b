"""``moesim routing``: JSON numbers match the closed forms; user errors are one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from moesim.cli.main import app

BASE = Path(__file__).resolve().parents[3] / "scenarios" / "mixtral-8x7b-64xh100.yaml"


def test_routing_json_balanced_mixtral() -> None:
    res = CliRunner().invoke(app, ["routing", str(BASE), "--json", "--micro-batches", "2"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["ep"] == 8 and len(data["layers"]) == 32
    row = data["layers"][0]
    # Balanced top-2, 8 sources x 4096 tokens: every rank computes 8 x 1024 copies and sends
    # 7/8 of its 8192 copies to the other ranks of its node at 8192 bytes each.
    assert row["max_tokens_per_rank"] == row["mean_tokens_per_rank"] == 8192
    assert row["intra_node_bytes_per_rank"] == 7 * 1024 * 8192
    assert row["inter_node_bytes_per_rank"] == 0 and row["drop_fraction"] == 0


def test_routing_bad_override_is_one_line() -> None:
    res = CliRunner().invoke(app, ["routing", str(BASE), "--set", "routing.capacity_factor=-1"])
    assert res.exit_code == 2
    assert "capacity_factor" in res.output and "Traceback" not in res.output
