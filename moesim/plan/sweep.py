"""Sweeps: every point of a SweepSpec evaluated once, results streamed and resumable.

A point is the base scenario plus its overrides, what ``load_scenario(base, sets=[...])``
gives (``moesim.plan.points`` parses the base once per process); its identity is a hash of the overrides, so a rerun
with the same out dir skips what is already recorded. Bad points are recorded with their
reason and the sweep goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moesim.errors import InfeasibleError, MoesimError, SpecError
from moesim.plan.evaluate import ENGINE_EVALUATOR, require_fit, resolve
from moesim.plan.executors import Executor, SerialExecutor
from moesim.plan.points import load_point, set_args  # noqa: F401  (set_args: re-exported)
from moesim.plan.store import ResultStore, point_id
from moesim.specs.sweep import SweepSpec


@dataclass(frozen=True)
class PointTask:
    """One point to evaluate: picklable, self-contained (paths are absolute or cwd-relative)."""

    index: int
    point_id: str
    overrides: tuple[tuple[str, Any], ...]
    base_path: str
    fidelity: str
    evaluator: str = ENGINE_EVALUATOR


def run_point(task: PointTask) -> dict[str, Any]:
    """Evaluate one point; never raises for a user error (the record says what went wrong)."""
    rec: dict[str, Any] = {"index": task.index, "point_id": task.point_id,
                           "overrides": dict(task.overrides), "status": "ok", "reason": "",
                           "error": "", "metrics": {}}
    try:
        scenario = load_point(task.base_path, task.overrides)
        metrics = resolve(task.evaluator)(scenario, task.fidelity)
        rec["metrics"] = metrics
        require_fit(metrics)
    except SpecError as exc:
        rec.update(status="invalid", reason=exc.field or "spec", error=_one_line(exc))
    except InfeasibleError as exc:
        rec.update(status="infeasible", reason=exc.reason, error=_one_line(exc))
    except MoesimError as exc:
        rec.update(status="error", reason=type(exc).__name__, error=_one_line(exc))
    except Exception as exc:  # a bug in a cost model must not end a 1000-point sweep
        rec.update(status="error", reason=type(exc).__name__, error=_one_line(exc))
    return rec


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def sweep_tasks(spec: SweepSpec, sweep_path: str | Path,
                evaluator: str = ENGINE_EVALUATOR) -> list[PointTask]:
    """Every point of ``spec`` as a task, in sweep order."""
    base = str((Path(sweep_path).parent / spec.base).resolve())
    out = []
    for i, ov in enumerate(spec.points()):
        out.append(PointTask(index=i, point_id=point_id(ov), overrides=tuple(ov.items()),
                             base_path=base, fidelity=spec.fidelity, evaluator=evaluator))
    return out


@dataclass
class SweepSummary:
    """How a sweep ended: counts by status and the file paths written."""

    total: int
    skipped: int = 0
    computed: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    interrupted: bool = False
    jsonl_path: Path | None = None
    csv_path: Path | None = None
    records: list[dict[str, Any]] = field(default_factory=list)  # finished, in sweep order

    @property
    def all_infeasible(self) -> bool:
        """No point succeeded and at least one was infeasible (CLI exit code 3)."""
        return self.counts.get("ok", 0) == 0 and self.counts.get("infeasible", 0) > 0

    @property
    def all_invalid(self) -> bool:
        return self.total > 0 and self.counts.get("invalid", 0) == self.total


Progress = Callable[[dict[str, Any]], None]


def run_sweep(spec: SweepSpec, sweep_path: str | Path, out_dir: str | Path, *,
              executor: Executor | None = None, evaluator: str = ENGINE_EVALUATOR,
              on_start: Callable[[int, int, int], None] | None = None,
              on_result: Progress | None = None) -> SweepSummary:
    """Evaluate the points of ``spec`` not yet in ``out_dir``; Ctrl-C keeps what is done.

    ``on_start(total, already_done, already_failed)`` is called once, ``on_result(record)`` per finished point.
    """
    tasks = sweep_tasks(spec, sweep_path, evaluator)
    manifest = {"name": spec.name, "base": spec.base, "fidelity": spec.fidelity,
                "mode": spec.mode, "num_points": len(tasks)}
    store = ResultStore(out_dir, manifest)
    todo = [t for t in tasks if not store.done(t.point_id)]
    summary = SweepSummary(total=len(tasks), skipped=len(tasks) - len(todo),
                           jsonl_path=store.jsonl_path, csv_path=store.csv_path)
    if on_start:
        bad = sum(r["status"] != "ok" for r in store.records.values())
        on_start(len(tasks), summary.skipped, bad)
    ex = executor or SerialExecutor()
    errors = 0
    try:
        for rec in ex.run(run_point, todo):
            store.append(rec)
            summary.computed += 1
            errors += rec["status"] == "error"
            if on_result:
                on_result(rec)
    except KeyboardInterrupt:
        summary.interrupted = True
        raise
    finally:
        ex.close()
        store.close()
        store.write_csv()
        summary.records = store.ordered()
        for r in store.records.values():
            summary.counts[r["status"]] = summary.counts.get(r["status"], 0) + 1
        if errors:
            summary.counts["error"] = errors
    return summary
