"""Run every measured case under some paths and summarize the errors per category.

``run_check(paths)`` finds the YAML files (folders are searched recursively, in sorted
order), keeps the scenarios that carry a ``measured:`` block and every ``case:`` file,
predicts each point and returns a :class:`CheckReport`. A file that fails (invalid,
infeasible, unreadable, or a bug) is recorded in ``failed`` with its one-line message and the
rest of the files are still checked. The mean absolute percentage error
(MAPE) per category is over every point of that category; ``held_out`` leaves out the points
marked ``in_sample`` (a constant was fitted to them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from moesim import shipped
from moesim.check.cases import is_case_file, load_case
from moesim.check.evaluate import CheckRow, Fidelity, evaluate_case, evaluate_scenario
from moesim.errors import MAX_MESSAGE, InfeasibleError, MoesimError, SpecError, clip
from moesim.specs.loader import is_file, load_scenario, read_yaml

DEFAULT_PATH = shipped.shipped_dir("scenarios/published")


@dataclass(frozen=True)
class CategorySummary:
    """Mean absolute error (percent) of one category, over all points and held-out ones."""

    category: str
    num_points: int
    mape_pct: float
    num_held_out: int
    held_out_mape_pct: float | None


@dataclass(frozen=True)
class CheckReport:
    """Every checked point, the fidelity used, and the files that held no measurement."""

    fidelity: str
    rows: tuple[CheckRow, ...]
    skipped: tuple[str, ...] = field(default=())
    failed: tuple[tuple[str, str], ...] = field(default=())  # (file, one-line message)

    def summary(self) -> list[CategorySummary]:
        """One summary per category, in sorted category order."""
        return summarize(self.rows)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready: rows (with error_pct), per-category MAPE, skipped files."""
        return {"fidelity": self.fidelity, "rows": [r.as_dict() for r in self.rows],
                "summary": [s.__dict__ for s in self.summary()],
                "skipped": list(self.skipped),
                "failed": [{"file": f, "error": e} for f, e in self.failed]}


def mape(rows: Iterable[CheckRow]) -> float | None:
    """Mean of |error %| over ``rows``; None when there are none."""
    errs = [abs(r.error_pct) for r in rows]
    return sum(errs) / len(errs) if errs else None


def summarize(rows: Sequence[CheckRow]) -> list[CategorySummary]:
    """MAPE per category over all points and over the held-out (not in-sample) points."""
    out = []
    for cat in sorted({r.category for r in rows}):
        mine = [r for r in rows if r.category == cat]
        held = [r for r in mine if not r.in_sample]
        total = mape(mine)
        assert total is not None
        out.append(CategorySummary(cat, len(mine), total, len(held), mape(held)))
    return out


def discover(paths: Sequence[str | Path]) -> list[Path]:
    """YAML files named by ``paths`` (files as given, folders recursively, sorted)."""
    found: list[Path] = []
    for raw in paths:
        p = shipped.resolve(raw, "case")
        if not p.exists():
            p = shipped.resolve(raw, "scenario")
        if p.is_dir():
            found += sorted(q for q in p.rglob("*") if q.suffix in (".yaml", ".yml")
                            and is_file(q))
        elif is_file(p):
            found.append(p)
        else:
            raise SpecError(f"file not found: {p}; give case files or folders of them",
                            file=str(p))
    return found


def check_file(path: Path, fidelity: Fidelity) -> list[CheckRow] | None:
    """Rows of one file, or None when it is a scenario without a ``measured:`` block."""
    data = read_yaml(path)
    if is_case_file(data):
        return evaluate_case(str(path), load_case(path), fidelity)
    if not isinstance(data, dict) or not data.get("measured"):
        return None
    spec = load_scenario(path, data=data)
    return evaluate_scenario(str(path), spec, fidelity)


def run_check(paths: Sequence[str | Path] = (DEFAULT_PATH,), *,
              fidelity: Fidelity = "des",
              on_file: Callable[[int, int, Path], None] | None = None) -> CheckReport:
    """Predict every measured point under ``paths``; engine runs at ``fidelity``.
    ``on_file(done, total, path)`` hears of each file before it is checked."""
    if fidelity not in ("des", "analytic"):
        raise SpecError(f"fidelity={fidelity!r} is not valid; valid: des, analytic")
    rows: list[CheckRow] = []
    skipped: list[str] = []
    failed: list[tuple[str, str]] = []
    files = discover(paths)
    for i, path in enumerate(files):
        if on_file is not None:
            on_file(i, len(files), path)
        try:
            got = check_file(path, fidelity)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # one bad case must not stop the folder: record it, go on
            failed.append((str(path), _failure_line(exc, path)))
            continue
        if got is None:
            skipped.append(str(path))
        else:
            rows += got
    return CheckReport(fidelity=fidelity, rows=tuple(rows), skipped=tuple(skipped),
                       failed=tuple(failed))


def _failure_line(exc: Exception, path: Path) -> str:
    """A failed case as one line naming its file (moesim's own errors already do)."""
    if isinstance(exc, (SpecError, InfeasibleError)):
        return str(exc.with_file(str(path)))
    if isinstance(exc, OSError):
        return clip(f"{path}: {exc.strerror or type(exc).__name__}", MAX_MESSAGE)
    if isinstance(exc, MoesimError):
        return clip(f"{path}: {exc}", MAX_MESSAGE)
    return clip(f"{path}: internal error: {type(exc).__name__}: {exc} (a bug in moesim; "
                "rerun the file with `moesim --debug check FILE`)", MAX_MESSAGE)
