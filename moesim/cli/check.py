"""``moesim check``: every published case against moesim's prediction; table, JSON, HTML."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from moesim import shipped
from moesim.cli.common import (
    FidelityChoice,
    console,
    fail,
    plain_console,
    print_json,
    progress,
    user_errors,
    value_of,
)
from moesim.io import safe_name
from moesim.units import eng


def _rows_table(report) -> Table:  # noqa: ANN001
    t = Table(title=f"moesim check ({report.fidelity}): {len(report.rows)} published points")
    for col, justify in (("case", "left"), ("point", "left"), ("metric", "left"),
                         ("published", "right"), ("predicted", "right"), ("error", "right"),
                         ("units", "left")):
        t.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in report.rows:
        err = f"{r.error_pct:+.1f}%"
        style = "green" if abs(r.error_pct) <= 10 else "yellow" if abs(r.error_pct) <= 15 else "red"
        label = escape(r.label + (" *" if r.in_sample else ""))
        t.add_row(escape(r.case), label, escape(r.metric), eng(r.published), eng(r.predicted),
                  f"[{style}]{err}[/{style}]", r.units)
    return t


def _summary_table(report) -> Table:  # noqa: ANN001
    t = Table(title="mean absolute error per category (* in-sample points)")
    for col in ("category", "points", "mean |error|", "held-out", "held-out mean |error|"):
        t.add_column(col, justify="left" if col == "category" else "right")
    for s in report.summary():
        held = "-" if s.held_out_mape_pct is None else f"{s.held_out_mape_pct:.1f}%"
        t.add_row(s.category, str(s.num_points), f"{s.mape_pct:.1f}%", str(s.num_held_out), held)
    return t


def register(app: typer.Typer) -> None:
    @app.command()
    @user_errors
    def check(
        paths: list[Path] | None = typer.Argument(
            None, help="Case files, folders or shipped case names (default: every shipped case)."),
        as_json: bool = typer.Option(False, "--json", help="Print rows and summary as JSON."),
        out: Path = typer.Option(None, "--out", show_default="reports/check for every case, "
                                 "reports/check-<first case>-<hash> for a subset",
                                 help="Folder for check.html (predicted vs published)."),
        fidelity: FidelityChoice = typer.Option(  # type: ignore[valid-type]
            "des", "--fidelity", help="Engine fidelity for training cases."),
    ) -> None:
        """Run every published case and compare: table, mean error per category, HTML scatter."""
        from moesim.check import run_check
        from moesim.check.render import write_check_html
        from moesim.check.suite import DEFAULT_PATH
        from moesim.errors import SpecError

        fidelity = value_of(fidelity)
        with progress("check") as update:
            report = run_check(list(paths) if paths else [DEFAULT_PATH],
                               fidelity=fidelity,  # type: ignore[arg-type]
                               on_file=lambda i, n, p: update(
                                   completed=i, total=n, description=escape(p.stem[:50])))
        if not report.rows:
            if len(report.failed) == 1:
                fail(report.failed[0][1])
            _print_failures(report)
            raise SpecError("no measured points found under "
                            f"{', '.join(str(p) for p in (paths or [DEFAULT_PATH]))}")
        page = write_check_html(report, out or check_out(paths or []))
        if as_json:
            print_json({**report.as_dict(), "html": str(page)})
        else:
            console.print(_rows_table(report))
            console.print(_summary_table(report))
            plain_console.print(f"wrote {page}")
        if report.failed:  # every other case was checked; the failures still fail the run
            _print_failures(report)
            raise typer.Exit(2)


def check_out(paths: list[Path]) -> Path:
    """reports/check for the whole suite; a subset gets its own folder, named by its first
    case, how many more, and a hash of the resolved paths, so it never replaces the full
    page (or another subset's)."""
    if not paths:
        return Path("reports") / "check"
    resolved = sorted(str(shipped.resolve(p, "case").resolve()) for p in paths)
    import hashlib

    digest = hashlib.sha256("\n".join(resolved).encode("utf-8")).hexdigest()[:8]
    first = safe_name(Path(str(paths[0])).stem, default="cases")[:60]
    more = f"+{len(paths) - 1}" if len(paths) > 1 else ""
    return Path("reports") / f"check-{first}{more}-{digest}"


def _print_failures(report) -> None:  # noqa: ANN001
    for _, message in report.failed:
        print(f"moesim: error: {message}", file=sys.stderr)
