"""The JSON Schemas accept every shipped file (scenarios name their topology and model by path)."""

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from moesim.cli.main import app


@pytest.fixture(scope="module")
def schemas(tmp_path_factory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("schema")
    result = CliRunner().invoke(app, ["schema", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return {p.name.split(".")[0]: json.loads(p.read_text()) for p in out.glob("*.schema.json")}


def _files(root: Path, pattern: str) -> list[Path]:
    files = sorted(root.glob(pattern))
    assert files, pattern
    return files


def test_schema_set(schemas):
    assert set(schemas) == {"topology", "model", "scenario", "sweep"}


@pytest.mark.parametrize("kind,pattern", [("topology", "topologies/*.yaml"),
                                          ("model", "scenarios/models/*.yaml"),
                                          ("scenario", "scenarios/*.yaml"),
                                          ("scenario", "scenarios/serving/*.yaml")])
def test_shipped_files_match_schema(root, schemas, kind, pattern):
    validator = jsonschema.Draft202012Validator(schemas[kind])
    for f in _files(root, pattern):
        errors = list(validator.iter_errors(yaml.safe_load(f.read_text())))
        assert not errors, f"{f}: {errors[0].message}"


def test_schema_rejects_unknown_field(root, schemas):
    data = yaml.safe_load((root / "topologies/dgx-h100-superpod.yaml").read_text())
    data["tiers"][1]["nic_gbps"] = 400
    assert not jsonschema.Draft202012Validator(schemas["topology"]).is_valid(data)
