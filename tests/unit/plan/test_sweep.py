from __future__ import annotations

from pathlib import Path

from plan_paths import FAKE, MIXTRAL

from moesim.plan.sweep import run_point, run_sweep, set_args, sweep_tasks
from moesim.specs.loader import load_scenario
from moesim.specs.overrides import parse_set
from moesim.specs.sweep import load_sweep


def test_set_args_round_trip() -> None:
    ov = (("a.b", 3), ("c", "direct"), ("d", {"kind": "zipf", "exponent": 1.2}), ("e", True),
          ("f", 0.5), ("g", None))
    assert parse_set(set_args(ov)) == list(ov)


def test_invalid_point_is_recorded_and_the_rest_finish(mixtral_sweep: Path,
                                                       tmp_path: Path) -> None:
    spec = load_sweep(mixtral_sweep)
    s = run_sweep(spec, mixtral_sweep, tmp_path / "out", evaluator=FAKE)
    assert s.total == 10 and s.computed == 10
    by_ep = {}
    for r in s.records:
        by_ep.setdefault(r["overrides"]["parallelism.expert_parallel_degree"], set()).add(
            r["status"])
    # EP 3 does not divide 8 experts; EP 1 keeps all 8 experts per GPU: the fake memory model
    # gives 87.7 GB > 85.5 GB (79.65 GiB; see plan_fakes.peak_bytes), so it is infeasible.
    assert by_ep == {1: {"infeasible"}, 2: {"ok"}, 3: {"invalid"}, 4: {"ok"}, 8: {"ok"}}
    bad = [r for r in s.records if r["status"] == "invalid"]
    assert all(r["reason"] == "parallelism.expert_parallel_degree" for r in bad)
    assert all("must divide" in r["error"] for r in bad)
    assert s.counts == {"ok": 6, "invalid": 2, "infeasible": 2}
    csv_rows = (tmp_path / "out" / "points.csv").read_text(encoding="utf-8").splitlines()
    assert len(csv_rows) == 11


def test_rerun_skips_finished_points(mixtral_sweep: Path, tmp_path: Path) -> None:
    spec = load_sweep(mixtral_sweep)
    first = run_sweep(spec, mixtral_sweep, tmp_path / "out", evaluator=FAKE)
    again = run_sweep(spec, mixtral_sweep, tmp_path / "out", evaluator=FAKE)
    assert again.skipped == 10 and again.computed == 0
    assert again.records == first.records


def test_unexpected_error_is_recorded_then_retried(mixtral_sweep: Path, tmp_path: Path) -> None:
    spec = load_sweep(mixtral_sweep)
    s = run_sweep(spec, mixtral_sweep, tmp_path / "out", evaluator="plan_fakes:broken")
    assert s.counts["error"] == 2                      # EP 4 x two micro-batch sizes
    fixed = run_sweep(spec, mixtral_sweep, tmp_path / "out", evaluator=FAKE)
    assert fixed.computed == 2 and "error" not in fixed.counts


def test_point_metrics_match_a_direct_evaluation(mixtral_sweep: Path) -> None:
    spec = load_sweep(mixtral_sweep)
    task = sweep_tasks(spec, mixtral_sweep, FAKE)[8]  # EP 8, MBS 1: the base scenario itself
    assert dict(task.overrides) == {"parallelism.expert_parallel_degree": 8,
                                    "parallelism.micro_batch_size": 1}
    import plan_fakes

    want = plan_fakes.evaluate(load_scenario(MIXTRAL), "analytic")
    assert run_point(task)["metrics"] == want


def test_zip_mode_pairs_values(tmp_path: Path) -> None:
    p = tmp_path / "zip.yaml"
    p.write_text(f"name: z\nbase: {MIXTRAL.as_posix()}\nmode: zip\naxes:\n"
                 "  - {path: parallelism.expert_parallel_degree, values: [2, 4]}\n"
                 "  - {path: parallelism.micro_batch_size, values: [1, 2]}\n", encoding="utf-8")
    tasks = sweep_tasks(load_sweep(p), p, FAKE)
    assert [dict(t.overrides) for t in tasks] == [
        {"parallelism.expert_parallel_degree": 2, "parallelism.micro_batch_size": 1},
        {"parallelism.expert_parallel_degree": 4, "parallelism.micro_batch_size": 2}]


def test_summary_to_dataframe(mixtral_sweep: Path, tmp_path: Path) -> None:
    import pytest

    pytest.importorskip("pandas")
    s = run_sweep(load_sweep(mixtral_sweep), mixtral_sweep, tmp_path / "out", evaluator=FAKE)
    frame = s.to_dataframe()
    assert len(frame) == 10 and sorted(frame["status"].value_counts().items()) == [
        ("infeasible", 2), ("invalid", 2), ("ok", 6)]
    assert set(frame["overrides.parallelism.expert_parallel_degree"]) == {1, 2, 3, 4, 8}
