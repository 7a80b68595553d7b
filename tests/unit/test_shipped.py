"""Shipped data by name (moesim.shipped) and the version from git tags (moesim._version)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from moesim import _version, shipped
from moesim.compute.tables import calibration_dir, default_table_for
from moesim.errors import SpecError
from moesim.specs.loader import load_model, load_scenario, load_topology

ROOT = Path(__file__).resolve().parents[2]


def test_checkout_reads_the_top_level_folders() -> None:
    assert shipped.data_root() == ROOT
    assert calibration_dir() == ROOT / "calibration"
    assert default_table_for("H100-SXM") == ROOT / "calibration" / "aic-h100-sxm.json"


def test_names_resolve_to_shipped_files() -> None:
    assert shipped.find_shipped("dgx-h100-superpod", "topology") == \
        ROOT / "topologies" / "dgx-h100-superpod.yaml"
    assert shipped.find_shipped("mixtral-8x7b.yaml", "model") == \
        ROOT / "scenarios" / "models" / "mixtral-8x7b.yaml"
    assert shipped.find_shipped("mcore-mixtral8x7b-h100-64gpu", "scenario") == \
        ROOT / "scenarios" / "published" / "mcore-mixtral8x7b-h100-64gpu.yaml"
    assert shipped.find_shipped("topologies/dgx-h100-superpod", "topology") is None
    assert shipped.find_shipped("no-such-system", "topology") is None
    assert "dgx-h200-superpod" in shipped.shipped_names("topology")


def test_an_existing_path_wins_over_a_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dgx-h100-superpod").mkdir()  # a folder of that name in the working directory
    assert shipped.resolve("dgx-h100-superpod", "topology") == Path("dgx-h100-superpod")
    assert shipped.resolve("dgx-h200-superpod", "topology") == \
        ROOT / "topologies" / "dgx-h200-superpod.yaml"


def test_loaders_take_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # nothing of the checkout is relative to here
    assert load_topology("dgx-h200-superpod").name == "dgx-h200-superpod"
    assert load_model("qwen3-30b-a3b").num_experts == 128
    assert load_scenario("mixtral-8x7b-64xh100").name == "mixtral-8x7b-64xh100"


def test_a_scenario_names_its_topology_and_model(tmp_path: Path) -> None:
    text = (ROOT / "scenarios" / "qwen3-30b-a3b-8xh100.yaml").read_text(encoding="utf-8")
    lines = [("topology: dgx-h100-superpod" if ln.startswith("topology:") else
              "model: qwen3-30b-a3b" if ln.startswith("model:") else ln)
             for ln in text.splitlines()]
    (tmp_path / "s.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    mine = load_scenario(tmp_path / "s.yaml")
    ref = load_scenario(ROOT / "scenarios" / "qwen3-30b-a3b-8xh100.yaml")
    assert mine.topology_spec == ref.topology_spec and mine.model_spec == ref.model_spec


def test_an_unknown_name_says_which_exist(tmp_path: Path) -> None:
    text = (ROOT / "scenarios" / "qwen3-30b-a3b-8xh100.yaml").read_text(encoding="utf-8")
    (tmp_path / "s.yaml").write_text(text.replace("../topologies/dgx-h100-superpod.yaml",
                                                  "dgx-h999-superpod"), encoding="utf-8")
    with pytest.raises(SpecError, match="shipped topology name.*dgx-a100-superpod"):
        load_scenario(tmp_path / "s.yaml")


@pytest.mark.parametrize(("described", "expected"), [
    ("v1.2.3-0-gabc1234", "1.2.3"),
    ("v1.2.3-0-gabc1234-dirty", "1.2.3+gabc1234.dirty"),
    ("v1.2.3-4-gabc1234", "1.2.4.dev4+gabc1234"),
    ("v0.9-12-gdeadbee-dirty", "0.10.dev12+gdeadbee.dirty"),
    ("release-1", None),
])
def test_describe_to_pep440(described: str, expected: str | None) -> None:
    assert _version.from_describe(described) == expected


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t",
                           *args], check=True, capture_output=True, text=True).stdout.strip()


def test_version_from_tags_of_a_checkout(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "a.txt").write_text("1", encoding="utf-8")
    _git(repo, "add", "a.txt")
    _git(repo, "commit", "-q", "-m", "one")
    sha = _git(repo, "rev-parse", "--short", "HEAD")
    assert _version.git_version(repo) == f"{_version.FALLBACK_VERSION}.dev1+g{sha}"  # no tag
    _git(repo, "tag", "v2.0.0")
    assert _version.git_version(repo) == "2.0.0"
    (repo / "a.txt").write_text("2", encoding="utf-8")
    _git(repo, "commit", "-q", "-am", "two")
    sha = _git(repo, "rev-parse", "--short", "HEAD")
    assert _version.git_version(repo) == f"2.0.1.dev1+g{sha}"


def test_version_without_git(tmp_path: Path) -> None:
    assert _version.source_version(tmp_path) == _version.FALLBACK_VERSION
    (tmp_path / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: moesim\nVersion: 3.1.4\n",
                                       encoding="utf-8")
    assert _version.source_version(tmp_path) == "3.1.4"  # an unpacked sdist
