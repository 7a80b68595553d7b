"""``moesim memory SCENARIO``: peak device memory per rank class, without running the DES."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from moesim.cli.common import (
    EXIT_INFEASIBLE,
    SET_HELP,
    attributed,
    console,
    fail,
    print_json,
    user_errors,
)
from moesim.constants import TERMS
from moesim.errors import InfeasibleError
from moesim.units import GIB

if TYPE_CHECKING:
    from moesim.memory.report import MemoryReport
    from moesim.results.schema import RankClassMemoryResult

# Table columns: groups of breakdown terms (the JSON output keeps every term).
_GROUPS = {
    "wts": ("weights_dense", "weights_expert"),
    "grad": ("gradients",),
    "opt": ("optimizer_states", "optimizer_step_temporaries"),
    "act": ("activations", "recompute_working_set"),
    "buf": ("a2a_buffers", "comm_buckets"),
    "rsv": ("framework_reserve", "allocator_fragmentation"),
}
assert sorted(t for g in _GROUPS.values() for t in g) == sorted(TERMS)


def _cells(rc: RankClassMemoryResult) -> list[str]:
    m = rc.memory
    groups = [sum(m.breakdown_bytes.get(t, 0.0) for t in g) for g in _GROUPS.values()]
    verdict = "[green]yes[/green]" if m.fits else "[red]no[/red]"
    return [f"{x / GIB:.2f}" for x in groups] + [
        f"{m.peak_bytes / GIB:.2f}", f"{m.headroom_bytes / GIB:.2f}", verdict]


def _table(name: str, report: MemoryReport) -> Table:
    table = Table(title=f"{escape(name)}: peak GiB per device, HBM {report.capacity_bytes / GIB:.2f} GiB",
                  caption="wts weights, grad gradients, opt optimizer, act activations, buf "
                  "all-to-all + buckets, rsv framework reserve + fragmentation; --json: all terms")
    table.add_column("class", no_wrap=True)
    table.add_column("ranks", justify="right")
    for col in (*_GROUPS, "peak", "free", "fits"):
        table.add_column(col, justify="right")
    rows: list[tuple[list[str], list[str], int]] = []  # names, cells, ranks
    for rc in report.rank_classes:
        cells = _cells(rc)
        if rows and rows[-1][1] == cells:  # merge runs of identical stages (pp1-pp14)
            rows[-1][0].append(rc.rank_class)
            rows[-1] = (rows[-1][0], cells, rows[-1][2] + rc.multiplicity)
        else:
            rows.append(([rc.rank_class], cells, rc.multiplicity))
    for names, cells, ranks in rows:
        label = names[0] if len(names) == 1 else f"{names[0]}-{names[-1]}"
        bold = report.most_loaded in names
        table.add_row(label, str(ranks), *cells, style="bold" if bold else None)
    return table


@user_errors
def memory(
    scenario: Path = typer.Argument(..., help="A scenario YAML file."),
    sets: list[str] = typer.Option([], "--set", help=SET_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Peak bytes per rank class with the breakdown, HBM capacity, headroom and whether it
    fits (exit code 3 when some rank class does not), with the routing load `moesim run`
    uses, so both give one verdict."""
    from moesim.engine.simulation import step_memory
    from moesim.memory import ensure_fits
    from moesim.specs.loader import load_scenario

    with attributed(scenario):
        s = load_scenario(scenario, sets)
        report = step_memory(s)
    if as_json:
        print_json(report.model_dump(mode="json"))
    else:
        console.print(_table(s.name, report))
        console.print(f"routing load: {escape(report.routing_load)}", soft_wrap=True)
        if report.fits:
            console.print(f"fits; most loaded: {report.most_loaded} "
                          f"({report.peak_bytes / GIB:.2f} of {report.capacity_bytes / GIB:.2f} GiB)")
    try:
        with attributed(scenario):
            ensure_fits(report)  # does not fit: one line on stderr, exit code 3
    except InfeasibleError as exc:
        fail(str(exc), EXIT_INFEASIBLE)


def register(app: typer.Typer) -> None:
    app.command("memory")(memory)
