"""The fuzzer as a test (benchmarks/fuzz_specs.py is the long run): mutated scenarios,
topologies and models through ``validate``, ``memory``, ``routing`` and ``run --fidelity
analytic``, in process. Every command ends with exit 0, 2 or 3; an error is one line under 500
characters; no traceback. Fixed seed and a bounded number of examples keep it fast and
deterministic."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from moesim.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
BASES = ["default.yaml", "qwen3-30b-a3b-8xh100.yaml"]

EXTREMES = [0, -1, 1, 3, 2**20, 2**31, 2**53 + 1, 10**30, 1e-9, 1e-300, 0.5, 1e9, 1e18, 1e308,
            math.nan, math.inf, -math.inf, "", "x" * 3000, "../../x", "[/]", None, True, [],
            {}, {"kind": "bogus"}, [1] * 5000]
values = st.one_of(st.sampled_from(EXTREMES), st.integers(), st.floats(),
                   st.text(max_size=8), st.lists(st.integers(0, 9), max_size=3))
TEXT_MUTATIONS = [
    "", "dup: 1\ndup: 2\n", "deep: " + "[" * 300 + "]" * 300 + "\n",
    "a: &a [1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]"
    "\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n",
    "p: !!python/object/apply:os.system ['touch PWNED']\n", "b: !!binary aGVsbG8=\n",
]
SETS = ["seed=-1", "parallelism.moe_overlap_chunks=1000000", "model.num_experts=1000000",
        "workload.global_batch_size=80000000", "routing.capacity_factor=1e-9",
        "topology.accelerator.hbm_capacity_gib=1.0e+308", "a..b=1", "description=" + "[" * 99,
        "model.attention.head_dim=100000", "parallelism.pipeline_schedule.kind=dualpipe"]
runner = CliRunner()


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list) and len(node) < 32:
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


def _set(doc: Any, path: tuple, op: str, value: Any) -> None:
    if not path:
        return
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if op == "drop":
        parent.pop(path[-1])
    elif op == "add" and isinstance(parent, dict):
        parent[f"{path[-1]}_x"] = value
    else:
        parent[path[-1]] = value


def _docs() -> dict[str, dict[str, Any]]:
    out = {}
    for name in BASES:
        scen = yaml.safe_load((ROOT / "scenarios" / name).read_text())
        topo = yaml.safe_load((ROOT / "scenarios" / scen["topology"]).read_text())
        model = yaml.safe_load((ROOT / "scenarios" / scen["model"]).read_text())
        out[name] = {"scenario": scen, "topology": topo, "model": model}
    return out


DOCS = _docs()


def _dump(doc: Any) -> str:
    return json.dumps(doc, allow_nan=True).replace("NaN", ".nan").replace(
        "-Infinity", "-.inf").replace("Infinity", ".inf")  # JSON is YAML (floats aside)


def _one_line(result) -> None:
    assert result.exit_code in (0, 2, 3), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    if result.exit_code:  # `memory` prints its table before it fails: look at stderr alone
        text = result.stderr.strip()
        assert len(text.splitlines()) == 1 and text.startswith("moesim: error: "), text
        assert len(text) < 500, text


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli-fuzz")


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.data())
def test_commands_survive_mutated_specs(workdir: Path, data) -> None:
    base = data.draw(st.sampled_from(BASES))
    docs = copy.deepcopy(DOCS[base])
    which = data.draw(st.sampled_from(["scenario", "topology", "model"]))
    for _ in range(data.draw(st.integers(1, 2))):
        path = data.draw(st.sampled_from(_paths(docs[which])))
        _set(docs[which], path, data.draw(st.sampled_from(["replace", "replace", "drop", "add"])),
             data.draw(values))
    files = {k: workdir / f"{k}.yaml" for k in docs}
    docs["scenario"]["topology"] = str(files["topology"])
    docs["scenario"]["model"] = str(files["model"])
    for k, f in files.items():
        extra = data.draw(st.sampled_from(TEXT_MUTATIONS)) if k == which else ""
        f.write_text(extra + _dump(docs[k]) if not extra.startswith("dup") else
                     _dump(docs[k])[:-1] + ', "name": "again"}' + "\n")
    sets = data.draw(st.lists(st.sampled_from(SETS), max_size=1))
    set_args = [a for s in sets for a in ("--set", s)]
    scen = str(files["scenario"])
    out = str(workdir / "out")
    for cmd in (["validate", str(files[which])], ["memory", scen], ["routing", scen],
                ["run", scen, "--fidelity", "analytic", "--out", out]):
        _one_line(runner.invoke(app, [*cmd, *set_args]))
    assert not (workdir / "PWNED").exists()
