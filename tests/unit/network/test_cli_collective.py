"""``moesim collective``: numbers in JSON, sweep table, one-line user errors (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from moesim.cli.main import app
from moesim.cluster.synthetic import gpu_cluster

runner = CliRunner()


@pytest.fixture
def topo(tmp_path: Path) -> Path:
    path = tmp_path / "h100x2.yaml"
    path.write_text(yaml.safe_dump(gpu_cluster("H100", 2).model_dump(mode="json")))
    return path


def test_json_all_reduce(topo: Path) -> None:
    res = runner.invoke(app, ["collective", str(topo), "--op", "all_reduce", "--ranks", "8",
                              "--size", "1GiB", "--algorithm", "ring", "--json"])
    assert res.exit_code == 0, res.output
    row = json.loads(res.output)["results"][0]
    assert row["size_bytes"] == 1024**3
    # nccl-tests: busbw = algbw x 2(n-1)/n.
    assert row["busbw_gbyte_per_s"] == pytest.approx(row["algbw_gbyte_per_s"] * 1.75)
    assert row["algorithm"] == "ring"


def test_sweep_covers_1k_to_16g(topo: Path) -> None:
    res = runner.invoke(app, ["collective", str(topo), "--op", "all_gather", "--ranks", "16",
                              "--sweep", "--json"])
    assert res.exit_code == 0, res.output
    sizes = [r["size_bytes"] for r in json.loads(res.output)["results"]]
    assert sizes[0] == 1024 and sizes[-1] == 16 * 1024**3 and len(sizes) == 25
    busbw = [r["busbw_gbyte_per_s"] for r in json.loads(res.output)["results"]]
    assert busbw == sorted(busbw)  # latency fades with size: bus bandwidth never drops


@pytest.mark.parametrize("args", [["--op", "broadcast", "--ranks", "8"],
                                  ["--op", "all_reduce", "--ranks", "64"],
                                  ["--op", "all_reduce", "--ranks", "8", "--size", "lots"],
                                  ["--op", "all_reduce", "--ranks", "8", "--algorithm", "tree"]])
def test_user_errors_are_one_line(topo: Path, args: list[str]) -> None:
    res = runner.invoke(app, ["collective", str(topo), *args])
    assert res.exit_code == 2
    assert "Traceback" not in res.output
