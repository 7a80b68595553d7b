"""Sweeps: every point of a SweepSpec evaluated once, results streamed and resumable.

A point is the base scenario plus its overrides: what ``load_scenario(base, sets=[...])``
gives. Its identity (:func:`point_key`) is a hash of that resolved scenario, the fidelity,
moesim's version and source, and the bytes of the side files it names, so a rerun with the
same out dir skips exactly the points whose inputs did not change: an edited base scenario,
model or topology file, or another moesim, computes them again. Bad points are recorded with
their reason and the sweep goes on; two points that resolve to the same scenario are computed
once and both get their row in the CSV.

Files are not re-read per point. ``load_point`` loads the base once per process with
``load_scenario`` (cached by the size and modification time of the base and of every file it
names), sets the overrides on a copy
of the mapping that ``load_scenario`` validates (topology and model embedded), and
validates and checks that. Overrides that the loader resolves against files (a new
topology or model file, ``topology_overrides``, a side file, a whole mapping inside the
topology or model file) go through ``load_scenario`` itself. A test checks that both give
equal specs, and equal errors, on every shipped sweep file.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moesim.errors import InfeasibleError, MoesimError, SpecError, require_pandas
from moesim.plan.evaluate import ENGINE_EVALUATOR, require_fit, resolve
from moesim.plan.executors import Executor, SerialExecutor
from moesim.plan.store import ResultStore, point_id
from moesim.specs.loader import apply_overrides, load_scenario, read_yaml, scenario_from_data
from moesim.specs.routing import HistogramLoadSpec
from moesim.specs.scenario import ScenarioSpec
from moesim.specs.sweep import SweepSpec

Overrides = tuple[tuple[str, Any], ...]

# Paths the loader resolves against files: they take the slow, exact path.
_FILE_PATHS = ("topology", "model", "topology_overrides", "calibration", "routing.load.path")


Stamp = tuple[int, int] | None  # (mtime in ns, size) of a file, None when it is missing


def _stamp(path: str | Path) -> Stamp:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_mtime_ns, st.st_size


@functools.lru_cache(maxsize=8)
def _base(path: str, stamp: Stamp) -> tuple[dict[str, Any], tuple[tuple[str, Stamp], ...]]:
    """The mapping ``load_scenario(path)`` validates, topology and model embedded, and the
    files it was read from with their stamps (a cached entry is used only while none changed:
    an edited model or topology file must not give the points of an old one)."""
    del stamp  # cache key only: an edited base is parsed again
    raw = read_yaml(path)
    spec = load_scenario(path, data=raw)
    base = Path(path).parent
    deps = [str(base / raw[k]) for k in ("topology", "model") if isinstance(raw.get(k), str)]
    if spec.calibration:
        deps.append(spec.calibration)
    if isinstance(spec.routing.load, HistogramLoadSpec):
        deps.append(spec.routing.load.path)
    # exclude_unset keeps the scenario's own fields as the file gave them (so a discriminated
    # union can change kind); topology and model were embedded as full dumps by the loader.
    return _lists(spec.model_dump(exclude_unset=True)), tuple((d, _stamp(d)) for d in deps)


def _resolved_base(path: str) -> dict[str, Any]:
    data, deps = _base(path, _stamp(path))
    if any(_stamp(d) != st for d, st in deps):
        _base.cache_clear()
        data, deps = _base(path, _stamp(path))
    return data


def _lists(node: Any) -> Any:
    """Tuples as lists, as YAML gives them, so ``set_path`` can index into them."""
    if isinstance(node, dict):
        return {k: _lists(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_lists(v) for v in node]
    return node


def fast_path_ok(overrides: Overrides) -> bool:
    """Whether ``overrides`` can be set on the parsed base (else: ``load_scenario``)."""
    for path, value in overrides:
        head = path.split(".", 1)[0]
        if path in _FILE_PATHS or head in ("topology_overrides", "calibration"):
            return False
        if path.startswith("routing.load") and isinstance(value, dict) and "path" in value:
            return False
        if head in ("topology", "model") and isinstance(value, (dict, list)):
            return False
    return True


def load_point(base_path: str | Path, overrides: Overrides) -> ScenarioSpec:
    """The base scenario with ``overrides`` (dotted path, value) applied and checked.

    Raises SpecError as ``load_scenario`` does (the file named is the base scenario).
    """
    p = Path(base_path)
    if not fast_path_ok(overrides):
        return load_scenario(p, sets=set_args(overrides))
    if _stamp(p) is None:
        return load_scenario(p, sets=set_args(overrides))  # the loader words the error
    data = _resolved_base(str(p))
    try:
        data = apply_overrides(data, list(overrides))
    except SpecError as exc:
        raise exc.with_file(str(p)) from None
    return scenario_from_data(data, p)


def set_args(overrides: Overrides) -> list[str]:
    """``PATH=VALUE`` strings whose VALUE parses back (as YAML) to the same object."""
    return [f"{k}={json.dumps(v)}" for k, v in overrides]


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


def code_fingerprint() -> str:
    """moesim's version and a hash of its Python source: an edited checkout is another moesim."""
    import moesim

    root = Path(moesim.__file__).resolve().parent
    h = hashlib.sha256(moesim.__version__.encode("utf-8"))
    for f in sorted(root.rglob("*.py")):
        h.update(f.relative_to(root).as_posix().encode("utf-8"))
        h.update(f.read_bytes())
    return f"{moesim.__version__}+{h.hexdigest()[:12]}"


def _file_digest(path: str | Path) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError:
        return "unreadable"


def point_key(scenario: ScenarioSpec, fidelity: str, code: str) -> dict[str, Any]:
    """What decides a point's result: the resolved scenario (topology and model embedded),
    the fidelity, moesim (``code_fingerprint``) and the bytes of the files it names."""
    files = {}
    if scenario.calibration:
        files["calibration"] = _file_digest(scenario.calibration)
    load = scenario.routing.load
    if isinstance(load, HistogramLoadSpec):
        files["routing.load.path"] = _file_digest(load.path)
    return {"scenario": scenario.model_dump(mode="json"), "fidelity": fidelity,
            "moesim": code, "files": files}


def _base_digest(base: Path) -> str:
    """The bytes of the base scenario and of the files it names by path (for invalid points,
    whose scenario cannot be resolved)."""
    h = hashlib.sha256(_file_digest(base).encode())
    try:
        data = read_yaml(base)
    except SpecError:
        return h.hexdigest()[:16]
    if isinstance(data, dict):
        for key in ("topology", "model", "calibration"):
            if isinstance(data.get(key), str):
                h.update(_file_digest(base.parent / data[key]).encode())
    return h.hexdigest()[:16]


def sweep_tasks(spec: SweepSpec, sweep_path: str | Path,
                evaluator: str = ENGINE_EVALUATOR) -> list[PointTask]:
    """Every point of ``spec`` as a task, in sweep order, with its content-keyed id.

    Each point is resolved here once to compute its id (the fast path of ``load_point``,
    well under a millisecond a point); the worker resolves it again rather than receiving
    it, so a 100,000-point sweep does not hold 100,000 scenarios in memory."""
    base = str((Path(sweep_path).parent / spec.base).resolve())
    code = code_fingerprint()
    base_digest = ""
    out = []
    for i, ov in enumerate(spec.points()):
        items = tuple(ov.items())
        try:
            key: dict[str, Any] = point_key(load_point(base, items), spec.fidelity, code)
        except Exception:  # invalid (or a bug): keyed by the overrides and the files' bytes
            base_digest = base_digest or _base_digest(Path(base))
            key = {"unresolved": ov, "base": base_digest, "fidelity": spec.fidelity,
                   "moesim": code}
        out.append(PointTask(index=i, point_id=point_id(key), overrides=items,
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

    def to_dataframe(self) -> Any:
        """One row per finished point: status, reason, the overrides and the metrics (as
        ``overrides.PATH`` and ``metrics.NAME`` columns). Needs pandas."""
        pd = require_pandas("SweepSummary.to_dataframe()")
        rows = [{"index": r["index"], "point_id": r["point_id"], "status": r["status"],
                 "reason": r["reason"], "error": r["error"],
                 **{f"overrides.{k}": v for k, v in r["overrides"].items()},
                 **{f"metrics.{k}": v for k, v in r["metrics"].items()}} for r in self.records]
        return pd.DataFrame(rows)


Progress = Callable[[dict[str, Any]], None]


def run_sweep(spec: SweepSpec, sweep_path: str | Path, out_dir: str | Path, *,
              executor: Executor | None = None, evaluator: str = ENGINE_EVALUATOR,
              fresh: bool = False,
              on_start: Callable[[int, int, int], None] | None = None,
              on_result: Progress | None = None) -> SweepSummary:
    """Evaluate the points of ``spec`` not yet in ``out_dir``; Ctrl-C keeps what is done.
    ``fresh``: forget what ``out_dir`` holds and compute every point.

    ``on_start(total, already_done, already_failed)`` is called once, ``on_result(record)`` per finished point.
    """
    tasks = sweep_tasks(spec, sweep_path, evaluator)
    manifest = {"name": spec.name, "base": spec.base, "fidelity": spec.fidelity,
                "mode": spec.mode, "num_points": len(tasks), "moesim": code_fingerprint()}
    store = ResultStore(out_dir, manifest, fresh=fresh)
    unique: dict[str, PointTask] = {}
    for t in tasks:  # two points that resolve to the same scenario are computed once
        unique.setdefault(t.point_id, t)
    todo = [t for t in unique.values() if not store.done(t.point_id)]
    rows = [(t.index, t.point_id, dict(t.overrides)) for t in tasks]
    summary = SweepSummary(total=len(tasks),
                           skipped=sum(store.done(t.point_id) for t in tasks),
                           jsonl_path=store.jsonl_path, csv_path=store.csv_path)
    if on_start:
        bad = sum(store.done(t.point_id) and store.records[t.point_id]["status"] != "ok"
                  for t in tasks)
        on_start(len(tasks), summary.skipped, bad)
    ex = executor or SerialExecutor()
    copies = Counter(t.point_id for t in tasks)  # points sharing one computed record
    try:
        for rec in ex.run(run_point, todo):
            store.append(rec)
            summary.computed += copies.get(rec["point_id"], 1)
            if on_result:
                on_result(rec)
    except KeyboardInterrupt:
        summary.interrupted = True
        raise
    finally:
        ex.close()
        store.close()
        store.write_csv(rows)
        summary.records = store.ordered(rows)
        for r in summary.records:
            summary.counts[r["status"]] = summary.counts.get(r["status"], 0) + 1
    return summary
