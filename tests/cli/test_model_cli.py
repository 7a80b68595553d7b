"""`moesim model import`: YAML on stdout or to a file, notes on stderr, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from moesim.cli.main import app
from moesim.specs import load_model

HF = Path(__file__).resolve().parents[1] / "unit" / "specs" / "fixtures" / "hf"
runner = CliRunner()


def test_import_to_file(tmp_path, root):
    out = tmp_path / "m.yaml"
    r = runner.invoke(app, ["model", "import", str(HF / "mixtral-8x7b-v0.1.json"), "--out",
                            str(out), "--name", "mixtral-8x7b"])
    assert r.exit_code == 0, r.output
    assert "46.70B parameters" in r.output
    assert load_model(out) == load_model(root / "scenarios/models/mixtral-8x7b.yaml")
    assert out.read_text().startswith("# mixtral-8x7b: imported by `moesim model import` from "
                                      "mixtral-8x7b-v0.1.json")


def test_import_to_stdout_with_notes():
    r = runner.invoke(app, ["model", "import", str(HF / "gpt-oss-120b.json")])
    assert r.exit_code == 0, r.output
    assert "name: gpt-oss-120b" in r.stdout and "sliding_window_frequency: 2" in r.stdout
    assert "note: attention sinks" in r.stderr


def test_bad_config_is_one_line(tmp_path):
    p = tmp_path / "config.json"
    p.write_text(json.dumps({"architectures": ["BertForMaskedLM"]}))
    r = runner.invoke(app, ["model", "import", str(p)])
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"moesim: error: {p}: architectures=")


def test_validate_a_raw_config_says_what_to_do():
    r = runner.invoke(app, ["validate", str(HF / "mixtral-8x7b-v0.1.json")])
    assert r.exit_code == 2
    line = r.output.strip()
    assert len(line.splitlines()) == 1 and "Hugging Face config.json" in line
    assert "moesim model import" in line and "unknown field 'architectures'" not in line
