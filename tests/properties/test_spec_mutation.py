"""Random mutations of valid specs: the loader answers with a spec or a SpecError, nothing else."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moesim.errors import SpecError
from moesim.specs.loader import load_scenario, validate_file

ROOT = Path(__file__).resolve().parents[2]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-3, max_value=300),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["fat_tree", "torus", "mla", "zipf", "dualpipe", "bogus", "", "../x.yaml",
                     "x" * 300, "a\x00b", "1e400", "2024-13-45"]),
)
garbage = st.recursive(scalars, lambda kids: st.one_of(
    st.lists(kids, max_size=3), st.dictionaries(st.text(max_size=8), kids, max_size=3)),
    max_leaves=6)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


def _mutate(doc: Any, path: tuple, op: str, value: Any) -> Any:
    if not path:
        return value if op == "replace" else doc
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if op == "drop" and isinstance(parent, dict):
        del parent[last]
    elif op == "drop" and isinstance(parent, list):
        parent.pop(last)
    elif op == "add" and isinstance(parent, dict):
        parent[f"{last}_extra"] = value
    elif op == "kind" and isinstance(parent, dict):
        parent["kind"] = value
    else:
        parent[last] = value
    return doc


def _base_docs() -> dict[str, Any]:
    scen = yaml.safe_load((ROOT / "scenarios/deepseek-v3-2048xh800.yaml").read_text())
    scen["topology"] = str(ROOT / "topologies/h800-deepseek-2048.yaml")
    scen["model"] = str(ROOT / "scenarios/models/deepseek-v3.yaml")
    embedded = yaml.safe_load((ROOT / "scenarios/qwen3-30b-a3b-8xh100.yaml").read_text())
    embedded["topology"] = yaml.safe_load((ROOT / "topologies/tpu-v4-pod.yaml").read_text())
    embedded["model"] = yaml.safe_load((ROOT / "scenarios/models/qwen3-30b-a3b.yaml").read_text())
    embedded["topology_overrides"] = {"tiers.0.dims": [2, 2, 2], "tiers.0.cube_dims": None}
    return {
        "scenario": scen, "embedded": embedded,
        "topology": yaml.safe_load((ROOT / "topologies/gb200-nvl72-superpod.yaml").read_text()),
        "model": yaml.safe_load((ROOT / "scenarios/models/glam-64b-64e.yaml").read_text()),
    }


BASE = _base_docs()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mutations")


def _check(call) -> None:
    try:
        call()
    except SpecError as exc:
        assert str(exc).strip() and "\n" not in str(exc).strip()


def test_unmutated_bases_are_valid(workdir):
    for name, doc in BASE.items():
        f = workdir / f"{name}.yaml"
        f.write_text(yaml.safe_dump(doc))
        validate_file(f)


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.data())
def test_mutations_give_spec_or_spec_error(workdir, data):
    name = data.draw(st.sampled_from(sorted(BASE)))
    doc = copy.deepcopy(BASE[name])
    for _ in range(data.draw(st.integers(1, 3))):
        paths = _paths(doc)
        path = data.draw(st.sampled_from(paths))
        op = data.draw(st.sampled_from(["drop", "replace", "replace", "add", "kind"]))
        doc = _mutate(doc, path, op, data.draw(garbage))
    f = workdir / "mutated.yaml"
    text = yaml.safe_dump(doc, allow_unicode=True)
    if data.draw(st.integers(0, 9)) == 0:  # sometimes break the YAML text itself
        cut = data.draw(st.integers(0, len(text)))
        text = text[:cut] + data.draw(st.sampled_from(["{", "]", ": :", "\t", "&a *b", "'"]))
    f.write_text(text)
    sets = data.draw(st.lists(st.one_of(
        st.text(max_size=20),
        st.builds(lambda p, v: f"{p}={v}", st.sampled_from(
            ["parallelism.expert_parallel_degree", "topology.tiers.0", "model.attention.kind",
             "topology_overrides", "routing.load.kind", "num_devices", "a.b.c", "model"]),
            st.text(max_size=10))), max_size=2))
    _check(lambda: validate_file(f, sets))
    if name in ("scenario", "embedded"):
        _check(lambda: load_scenario(f, sets))
