"""`moesim validate / topology / schema / --version`: output for humans and machines, and bad
input reported as one line with exit code 2 and no traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import moesim
from moesim.cli.main import app

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, list(args))


def _one_line_error(result) -> str:
    """The error line; asserts exit 2, exactly one line, no traceback."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    text = result.output.strip()
    assert "Traceback" not in text
    assert len(text.splitlines()) == 1, text
    assert text.startswith("moesim: error: ")
    return text


@pytest.fixture
def tree(tmp_path: Path, root: Path) -> Path:
    """A copy of the shipped specs, to break one file at a time."""
    shutil.copytree(root / "topologies", tmp_path / "topologies")
    shutil.copytree(root / "scenarios/models", tmp_path / "scenarios/models")
    for f in (root / "scenarios").glob("*.yaml"):
        shutil.copy(f, tmp_path / "scenarios" / f.name)
    return tmp_path


def test_validate_every_shipped_file(root):
    files = [str(p) for pat in ("topologies/*.yaml", "scenarios/*.yaml", "scenarios/models/*.yaml")
             for p in sorted(root.glob(pat))]
    result = _run("validate", "--json", *files)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert len(rows) == len(files) >= 27 and all(r["ok"] for r in rows)
    assert {r["kind"] for r in rows} == {"topology", "scenario", "model"}


def test_version():
    result = _run("--version")
    assert result.exit_code == 0 and moesim.__version__ in result.output


def test_show_h100_text(root):
    result = _run("topology", "show", str(root / "topologies/dgx-h100-superpod.yaml"))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    nvlink = next(x for x in lines if "nvswitch" in x)
    ib = next(x for x in lines if "fat_tree" in x)
    assert "450 GB/s per device per direction" in nvlink
    assert "400 Gb/s" in ib and "50 GB/s per device per direction" in ib


def test_show_h100_json(root):
    result = _run("topology", "show", "--json", str(root / "topologies/dgx-h100-superpod.yaml"))
    data = json.loads(result.output)
    nvl, ib = data["tiers"]
    assert data["devices"] == 1024
    assert nvl["kind"] == "nvswitch" and nvl["per_device_gbyte_per_s"] == 450
    # 8 NICs x 400 Gb/s / 8 bits / 8 GPUs = 50 GB/s per GPU; bisection 128/2 x 8 x 50 GB/s.
    assert ib["nic_gbit_per_s"] == 400 and ib["per_device_gbyte_per_s"] == 50
    assert ib["bisection_gbyte_per_s"] == 64 * 8 * 50


def test_show_tpu_v4(root):
    path = str(root / "topologies/tpu-v4-pod.yaml")
    data = json.loads(_run("topology", "show", "--json", path).output)
    (ici,) = data["tiers"]
    assert ici["kind"] == "torus" and ici["dims"] == [16, 16, 16] and ici["num_axes"] == 3
    assert ici["wraparound"] == [True, True, True] and ici["cube_dims"] == [4, 4, 4]
    text = _run("topology", "show", path).output
    assert "3D torus 16x16x16" in text and "4x4x4 cubes" in text


def test_topology_list(root):
    result = _run("topology", "list", "--json", "--dir", str(root / "topologies"))
    rows = json.loads(result.output)
    assert len(rows) >= 10
    assert {r["name"] for r in rows} >= {"tpu-v5p-pod", "h800-deepseek-2048", "dgx-a100-superpod"}


def test_validate_set_applies(root):
    path = str(root / "scenarios/default.yaml")
    assert _run("validate", path, "--set", "parallelism.expert_parallel_degree=4").exit_code == 0
    line = _one_line_error(_run("validate", path, "--set", "parallelism.expert_parallel_degree=3"))
    assert "parallelism.expert_parallel_degree=3 must divide model.num_experts=8" in line


def test_unknown_field(tree):
    f = tree / "scenarios/default.yaml"
    f.write_text(f.read_text().replace("  zero_stage: 1", "  zero_stag: 1"))
    line = _one_line_error(_run("validate", str(f)))
    assert "unknown field 'parallelism.zero_stag'" in line
    assert "did you mean 'zero_stage'?" in line
    assert "allowed fields here: all_to_all, context_parallel_degree" in line


def test_wrong_unit_suffix(tree):
    f = tree / "topologies/dgx-h100-superpod.yaml"
    f.write_text(f.read_text().replace("nic_gbit_per_s: 400", "nic_gbps: 400"))
    line = _one_line_error(_run("validate", str(f)))
    assert "unknown field 'tiers.1.nic_gbps'; did you mean 'nic_gbit_per_s'?" in line
    assert "_gbit_per_s (NICs)" in line


def test_ep_not_dividing_experts(tree):
    f = tree / "scenarios/deepseek-v3-2048xh800.yaml"
    f.write_text(f.read_text().replace("expert_parallel_degree: 64", "expert_parallel_degree: 6"))
    line = _one_line_error(_run("validate", str(f)))
    assert line.endswith(f"{f}: parallelism.expert_parallel_degree=6 must divide "
                         "model.num_experts=256; valid: 1, 2, 4, 8, 16, 32, 64, 128, 256")


def test_degrees_not_multiplying(tree):
    f = tree / "scenarios/mixtral-8x22b-128xh100.yaml"
    line = _one_line_error(_run("validate", str(f), "--set", "num_devices=120"))
    assert "tensor x context x pipeline = 4 x 1 x 8 = 32 must divide num_devices=120" in line


def test_more_devices_than_topology(tree):
    f = tree / "scenarios/default.yaml"
    line = _one_line_error(_run("validate", str(f), "--set", "num_devices=128"))
    assert "num_devices=128 exceeds the 64 devices of topology 'dgx-h100-superpod'" in line


def test_missing_referenced_file(tree):
    (tree / "scenarios/models/mixtral-8x7b.yaml").unlink()
    line = _one_line_error(_run("validate", str(tree / "scenarios/default.yaml")))
    assert "model='models/mixtral-8x7b.yaml': referenced file not found" in line


def test_missing_file_itself(tree):
    line = _one_line_error(_run("validate", str(tree / "scenarios/nope.yaml")))
    assert "file not found" in line


def test_malformed_yaml(tree):
    f = tree / "scenarios/default.yaml"
    f.write_text("name: x\nparallelism: {a: 1\nworkload: 3\n")
    line = _one_line_error(_run("validate", str(f)))
    assert "malformed YAML at line 3, column 9" in line


def test_bad_set_syntax(root):
    line = _one_line_error(_run("validate", str(root / "scenarios/default.yaml"), "--set", "oops"))
    assert "expected PATH=VALUE" in line


def test_topology_show_missing_file(tmp_path):
    _one_line_error(_run("topology", "show", str(tmp_path / "none.yaml")))


def test_schema_writes_files(tmp_path):
    result = _run("schema", "--out", str(tmp_path / "s"))
    assert result.exit_code == 0
    names = sorted(p.name for p in (tmp_path / "s").iterdir())
    assert names == ["model.schema.json", "scenario.schema.json", "sweep.schema.json",
                     "topology.schema.json"]
