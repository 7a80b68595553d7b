"""Sweep points are keyed by content: an edited base, model or topology computes them again;
error points are kept with their message; equal points are computed once; --fresh forgets."""

from __future__ import annotations

import json
from pathlib import Path

from plan_paths import FAKE, ROOT

from moesim.plan.sweep import code_fingerprint, run_sweep, sweep_tasks
from moesim.specs.sweep import load_sweep


def _tree(tmp: Path) -> Path:
    """A copy of the Mixtral scenario with its model and topology, and a sweep over it."""
    (tmp / "scenarios/models").mkdir(parents=True)
    (tmp / "topologies").mkdir()
    for rel in ("scenarios/mixtral-8x7b-64xh100.yaml", "scenarios/models/mixtral-8x7b.yaml",
                "topologies/dgx-h100-superpod.yaml"):
        (tmp / rel).write_text((ROOT / rel).read_text(encoding="utf-8"), encoding="utf-8")
    sweep = tmp / "scenarios/sweep.yaml"
    sweep.write_text("name: keys\nbase: mixtral-8x7b-64xh100.yaml\naxes:\n"
                     "  - {path: parallelism.expert_parallel_degree, values: [2, 3, 4, 8]}\n",
                     encoding="utf-8")
    return sweep


def _run(sweep: Path, out: Path, **kw):
    return run_sweep(load_sweep(sweep), sweep, out, evaluator=kw.pop("evaluator", FAKE), **kw)


def test_edits_to_the_base_and_its_files_recompute(tmp_path: Path) -> None:
    sweep, out = _tree(tmp_path), tmp_path / "out"
    assert _run(sweep, out).computed == 4
    assert _run(sweep, out).computed == 0
    base = tmp_path / "scenarios/mixtral-8x7b-64xh100.yaml"
    base.write_text(base.read_text(encoding="utf-8").replace("seed: 0", "seed: 1"),
                    encoding="utf-8")
    again = _run(sweep, out)
    assert (again.skipped, again.computed) == (0, 4)
    model = tmp_path / "scenarios/models/mixtral-8x7b.yaml"
    model.write_text(model.read_text(encoding="utf-8").replace("vocab_size: 32000",
                                                               "vocab_size: 32768"),
                     encoding="utf-8")
    assert _run(sweep, out).computed == 4
    topo = tmp_path / "topologies/dgx-h100-superpod.yaml"
    topo.write_text(topo.read_text(encoding="utf-8").replace("hbm_capacity_gib: 79.65",
                                                             "hbm_capacity_gib: 96"),
                    encoding="utf-8")
    assert _run(sweep, out).computed == 4
    assert _run(sweep, out).computed == 0
    recs = [json.loads(x) for x in (out / "points.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(recs) == len({r["point_id"] for r in recs})  # compacted: one line per id


def test_ids_depend_on_moesim_and_fidelity(tmp_path: Path) -> None:
    sweep = _tree(tmp_path)
    spec = load_sweep(sweep)
    ids = [t.point_id for t in sweep_tasks(spec, sweep, FAKE)]
    assert len(set(ids)) == 4
    des = spec.model_copy(update={"fidelity": "des"})
    assert not set(ids) & {t.point_id for t in sweep_tasks(des, sweep, FAKE)}
    assert code_fingerprint().startswith("0.") and "+" in code_fingerprint()


def test_error_points_are_kept_with_their_message(tmp_path: Path) -> None:
    sweep, out = _tree(tmp_path), tmp_path / "out"
    s = _run(sweep, out, evaluator="plan_fakes:broken")  # EP 4 raises ZeroDivisionError
    assert s.counts == {"ok": 2, "invalid": 1, "error": 1}
    jsonl = [json.loads(x) for x in (out / "points.jsonl").read_text(encoding="utf-8").splitlines()]
    err = [r for r in jsonl if r["status"] == "error"]
    assert len(err) == 1 and "float division by zero" in err[0]["error"]
    csv = (out / "points.csv").read_text(encoding="utf-8").splitlines()
    assert len(csv) == 5 and any(",error,ZeroDivisionError," in row for row in csv)
    fixed = _run(sweep, out)  # the error point is retried and its new record supersedes it
    assert fixed.computed == 1 and fixed.counts == {"ok": 3, "invalid": 1}
    assert len((out / "points.csv").read_text(encoding="utf-8").splitlines()) == 5


def test_points_resolving_alike_are_computed_once(tmp_path: Path) -> None:
    sweep = _tree(tmp_path)
    sweep.write_text("name: same\nbase: mixtral-8x7b-64xh100.yaml\nmode: zip\naxes:\n"
                     "  - {path: parallelism.expert_parallel_degree, values: [8, 8.0, 4]}\n"
                     "  - {path: seed, values: [0, 0, 0]}\n", encoding="utf-8")
    s = _run(sweep, tmp_path / "out")
    assert s.total == 3 and s.computed == 3 and s.counts == {"ok": 3}
    assert [r["index"] for r in s.records] == [0, 1, 2]
    assert s.records[0]["point_id"] == s.records[1]["point_id"]
    lines = (tmp_path / "out/points.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2  # computed once, one row per point in the CSV
    assert len((tmp_path / "out/points.csv").read_text(encoding="utf-8").splitlines()) == 4


def test_fresh_forgets_the_recorded_points(tmp_path: Path) -> None:
    sweep, out = _tree(tmp_path), tmp_path / "out"
    _run(sweep, out)
    s = _run(sweep, out, fresh=True)
    assert (s.skipped, s.computed) == (0, 4)
    assert len((out / "points.jsonl").read_text(encoding="utf-8").splitlines()) == 4
