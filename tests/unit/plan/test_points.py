"""Sweep points from the parsed base equal what ``load_scenario`` gives, specs and errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from plan_paths import MIXTRAL, ROOT

from moesim.errors import SpecError
from moesim.plan.sweep import fast_path_ok, load_point, set_args, sweep_tasks
from moesim.specs.loader import load_scenario
from moesim.specs.sweep import load_sweep

SWEEPS = sorted((ROOT / "scenarios" / "sweeps").glob("*.yaml"))


def _outcome(fn: object, *args: object) -> object:
    try:
        return fn(*args)  # type: ignore[operator]
    except SpecError as exc:
        return ("SpecError", exc.field, str(exc))


@pytest.mark.parametrize("sweep", SWEEPS, ids=lambda p: p.stem)
def test_points_equal_load_scenario(sweep: Path) -> None:
    tasks = sweep_tasks(load_sweep(sweep), sweep)
    step = max(1, len(tasks) // 40)  # at most ~40 points per file keep the test fast
    for t in tasks[::step]:
        assert fast_path_ok(t.overrides)
        want = _outcome(load_scenario, t.base_path, set_args(t.overrides))
        assert _outcome(load_point, t.base_path, t.overrides) == want, t.overrides


@pytest.mark.parametrize("overrides", [
    (("parallelism.expert_parallel_degree", 3),),  # does not divide 8 experts (check_scenario)
    (("parallelism.micro_batch_size", "two"),),  # pydantic type error
    (("parallelism.all_to_all", {"kind": "deepep"}),),  # another union member
    (("parallelism.all_to_all.kind", "hierarchical"),),  # a discriminator changed in place
    (("routing.capacity_factor.x", 1),),  # a path through a scalar (set_path)
    (("topology.tiers.1.nic_gbit_per_s", 800), ("seed", 7)),
])
def test_edge_overrides_equal_load_scenario(overrides: tuple[tuple[str, object], ...]) -> None:
    want = _outcome(load_scenario, str(MIXTRAL), set_args(overrides))
    assert _outcome(load_point, str(MIXTRAL), overrides) == want


def test_file_paths_take_the_loader() -> None:
    assert not fast_path_ok((("topology", "../topologies/dgx-h100-superpod.yaml"),))
    assert not fast_path_ok((("topology_overrides", {"tiers.1.num_domains": 4}),))
    assert not fast_path_ok((("routing.load", {"kind": "histogram", "path": "x.npy"}),))
    assert not fast_path_ok((("topology.tiers", []),))
    assert fast_path_ok((("routing.load", {"kind": "zipf", "exponent": 1.0}),))


def test_an_edited_base_is_parsed_again(tmp_path: Path) -> None:
    base = tmp_path / "s.yaml"
    text = MIXTRAL.read_text(encoding="utf-8").replace("../topologies/", f"{ROOT}/topologies/")
    text = text.replace("models/", f"{ROOT}/scenarios/models/")
    base.write_text(text, encoding="utf-8")
    assert load_point(base, ()).seed == 0
    base.write_text(text.replace("seed: 0", "seed: 12345"), encoding="utf-8")
    assert load_point(base, ()).seed == 12345
