"""``moesim sweep``, ``moesim plan`` and ``moesim capacity``: thin wrappers over moesim.plan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from moesim.cli.common import (
    SET_HELP,
    check_choice,
    console,
    err_console,
    fail,
    plain_console,
    print_json,
    user_errors,
)
from moesim.errors import InfeasibleError, SpecError
from moesim.io import safe_name
from moesim.plan.capacity import plan_capacity
from moesim.plan.evaluate import ENGINE_EVALUATOR, ENGINE_MEMORY, PLAN_EVALUATOR, Backend
from moesim.plan.executors import MAX_WORKERS, LocalExecutor, default_workers, make_executor
from moesim.plan.figures import write_plan_html, write_sweep_html
from moesim.plan.search import DEFAULT_ANALYTIC_BUDGET, PlanResult, plan_layouts, summary_rows
from moesim.plan.sweep import run_sweep
from moesim.specs.bounds import MAX_DEVICES, MAX_PRICE_PER_DEVICE_HOUR
from moesim.specs.loader import load_scenario
from moesim.specs.sweep import load_sweep
from moesim.units import GB, parse_count

# Tokens one training run may ask for: 1e18, 50,000x the 15T of today's largest runs.
MAX_TRAIN_TOKENS = 1e18
EVALUATOR_HELP = "MODULE:FUNCTION returning metrics for (scenario, fidelity) (default: the engine)"


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("failed {task.fields[failed]}"), TimeElapsedColumn(),
                    TextColumn("ETA"), TimeRemainingColumn(), console=err_console)


def sweep(
    file: Path = typer.Argument(..., help="A sweep YAML file."),
    executor: str = typer.Option("local", "--executor", help="local (process pool) or ray."),
    address: str = typer.Option(None, "--address", help="Ray cluster address, e.g. auto."),
    workers: int = typer.Option(None, "--workers", min=1, max=MAX_WORKERS,
                                help="Processes (default: all cores)."),
    out: Path = typer.Option(None, "--out", help="Out dir (default reports/sweeps/NAME)."),
    fresh: bool = typer.Option(False, "--fresh",
                               help="Forget the points the out dir holds and compute all."),
    evaluator: str = typer.Option(ENGINE_EVALUATOR, "--evaluator", hidden=True,
                                  help=EVALUATOR_HELP),
) -> None:
    """Run every point of a sweep; resumable; bad points are recorded and skipped.

    A point counts as done only while its resolved scenario, the files it names and moesim
    itself are unchanged; anything else computes it again."""
    spec = load_sweep(file)
    # The sweep's name is text from its file: it names one folder inside reports/sweeps/.
    out_dir = out or Path("reports") / "sweeps" / safe_name(spec.name, default="sweep")
    out_dir.mkdir(parents=True, exist_ok=True)  # an unwritable --out fails before the bar
    ex = make_executor(executor, workers=workers, address=address)
    with _progress() as bar:
        task = bar.add_task(escape(spec.name[:60]), total=len(spec.points()), failed=0)
        failed = 0

        def started(total: int, done: int, bad: int) -> None:
            nonlocal failed
            failed = bad
            bar.update(task, total=total, completed=done, failed=bad)

        def finished(rec: dict[str, Any]) -> None:
            nonlocal failed
            failed += rec["status"] != "ok"
            bar.update(task, advance=1, failed=failed)

        try:
            summary = run_sweep(spec, file, out_dir, executor=ex, evaluator=evaluator,
                                fresh=fresh, on_start=started, on_result=finished)
        except KeyboardInterrupt:
            bar.stop()
            err_console.print(f"interrupted: finished points kept in {escape(str(out_dir))}")
            raise typer.Exit(130) from None
    records = summary.records
    html_path = write_sweep_html(records, [a.path for a in spec.axes], out_dir / "sweep.html",
                                 spec.name)
    console.print(f"{summary.total} points: {summary.skipped} already done, "
                  f"{summary.computed} computed; " + ", ".join(
                      f"{k} {v}" for k, v in sorted(summary.counts.items())))
    plain_console.print(f"wrote {summary.jsonl_path}, {summary.csv_path}, {html_path}")
    if summary.all_invalid:
        first = next((r for r in records if r["error"]), None)
        fail(f"every point is invalid; first: {first['error'] if first else '?'}", 2)
    if summary.all_infeasible:
        fail("every point of the sweep is infeasible (see the reason column)", 3)


def _fmt(v: Any, scale: float = 1.0, spec: str = ".4g") -> str:
    return "-" if v is None else format(v / scale, spec)


def _print_plan(res: PlanResult, top: int) -> None:
    table = Table(title=f"{escape(res.scenario)} on {res.devices} devices: best {top} of "
                  f"{len(res.ranked)} ranked ({res.fitting:,} fit, {res.considered:,} considered)")
    for col in ("#", "layout", "fidelity", "tokens/s", "step s", "MFU", "peak GB",
                "headroom GB", "USD/Mtok"):
        table.add_column(col, justify="left" if col in ("layout", "fidelity") else "right")
    for r in summary_rows(res, top):
        table.add_row(str(r["rank"]), r["layout"], r["fidelity"], _fmt(r["tokens_per_s"]),
                      _fmt(r["step_time_s"]), _fmt(r["mfu"], spec=".3f"),
                      _fmt(r["peak_bytes"], GB, ".1f"), _fmt(r["headroom_bytes"], GB, ".1f"),
                      _fmt(r["usd_per_million_tokens"], spec=".3f"))
    out = console if console.is_terminal else Console(width=170)  # piped: do not wrap rows
    out.print(table)
    ex = Table(title="excluded layouts")
    ex.add_column("reason")
    ex.add_column("layouts", justify="right")
    for reason, n in sorted(res.excluded.items(), key=lambda kv: (-kv[1], kv[0])):
        ex.add_row(reason, str(n))
    out.print(ex)


def _plan_json(res: PlanResult, top: int) -> dict[str, Any]:
    return {"scenario": res.scenario, "devices": res.devices, "objective": res.objective,
            "considered": res.considered, "fitting": res.fitting, "ranked": len(res.ranked),
            "excluded": dict(sorted(res.excluded.items())), "top": summary_rows(res, top)}


def plan(
    scenario: Path = typer.Argument(..., help="A scenario YAML file (its layout is ignored)."),
    devices: int = typer.Option(None, "--devices", min=1, max=MAX_DEVICES,
                                help="Devices (default: scenario's)."),
    objective: str = typer.Option("throughput", "--objective", help="throughput or cost."),
    top: int = typer.Option(10, "--top", min=1, max=10_000, help="Layouts to print."),
    des_top: int = typer.Option(3, "--des-top", min=0, max=1_000,
                                help="Best analytic layouts to simulate."),
    budget: int = typer.Option(DEFAULT_ANALYTIC_BUDGET, "--analytic-budget", min=1,
                               max=100_000, help="Most layouts ranked with the analytic engine."),
    workers: int = typer.Option(None, "--workers", min=1, max=MAX_WORKERS,
                                help="Processes (default: all cores)."),
    out: Path = typer.Option(Path("reports"), "--out", help="Folder for the Pareto HTML page."),
    sets: list[str] = typer.Option([], "--set", help=SET_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable results."),
    evaluator: str = typer.Option(PLAN_EVALUATOR, "--evaluator", hidden=True),
    memory: str = typer.Option(ENGINE_MEMORY, "--memory", hidden=True),
    requests: int = typer.Option(1000, "--requests", min=1, max=1_000_000,
                                 help="Serving scenarios: requests simulated per deployment."),
) -> None:
    """Search every layout on N devices; print the best and why the rest were excluded (a
    serving scenario: every prefill/decode split and EP of N devices, by goodput per device)."""
    check_choice("plan", "--objective", objective, ("throughput", "cost"))
    s = load_scenario(scenario, sets)
    if s.is_serving:
        from moesim.cli.serve import plan_serving_command

        plan_serving_command(s, devices, top, requests, as_json)
        return
    n = devices or s.devices
    w = workers or default_workers()
    res = plan_layouts(s, n, objective=objective, des_top=des_top,  # type: ignore[arg-type]
                       backend=Backend(evaluator, memory), analytic_budget=budget,
                       executor=LocalExecutor(w) if w > 1 else None)
    if not res.ranked:
        raise InfeasibleError(f"none of the {res.considered} layouts on {n} devices fits; "
                              f"excluded: {dict(res.excluded.most_common())}", reason="plan")
    path = write_plan_html(res, out / f"plan-{safe_name(s.name, default='scenario')}-{n}.html",
                           versus="cost" if objective == "cost" else "memory")
    if as_json:
        print_json(_plan_json(res, top) | {"html": str(path)})
        return
    _print_plan(res, top)
    plain_console.print(f"wrote {path}")


def capacity(
    scenario: Path = typer.Argument(..., help="A scenario YAML file (its layout is ignored)."),
    tokens: str = typer.Option(..., "--tokens", help="Tokens to train, e.g. 15T."),
    days: float = typer.Option(..., "--days", min=1e-6, max=1e5,
                               help="Wall-clock days allowed."),
    price: float = typer.Option(None, "--price-per-device-hour", min=0,
                                max=MAX_PRICE_PER_DEVICE_HOUR, help="USD (default: topology)."),
    workers: int = typer.Option(None, "--workers", min=1, max=MAX_WORKERS,
                                help="Processes (default: all cores)."),
    sets: list[str] = typer.Option([], "--set", help=SET_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable results."),
    evaluator: str = typer.Option(PLAN_EVALUATOR, "--evaluator", hidden=True),
    memory: str = typer.Option(ENGINE_MEMORY, "--memory", hidden=True),
) -> None:
    """The smallest device count (multiples of the scale-up domain) that trains in time."""
    try:
        n_tokens = parse_count(tokens)
    except (ValueError, OverflowError):
        n_tokens = float("nan")
    if not (1 <= n_tokens <= MAX_TRAIN_TOKENS):  # also NaN and inf
        raise SpecError(f"moesim capacity: --tokens {tokens[:40]!r}: expected a count from 1 to "
                        "1e18 such as 15T, 2.5B or 1e12; see `moesim capacity --help`",
                        field="tokens")
    if days != days or price is not None and price != price:
        raise SpecError("moesim capacity: --days and --price-per-device-hour must be numbers",
                        field="days")
    s = load_scenario(scenario, sets)
    w = workers or default_workers()
    res = plan_capacity(s, n_tokens, days, price_per_device_hour=price,
                        backend=Backend(evaluator, memory),
                        executor_factory=(lambda: LocalExecutor(w)) if w > 1 else None)
    assert res.plan is not None and res.plan.best is not None
    best = res.plan.best
    data = {"devices": res.devices, "layout": best.layout.label, "fidelity": best.fidelity,
            "tokens_per_s": best.tokens_per_s, "required_tokens_per_s": res.required_tokens_per_s,
            "train_days": res.train_days, "cost_usd": res.cost_usd,
            "price_per_device_hour": res.price_per_device_hour,
            "visited": {str(k): v for k, v in sorted(res.visited.items())}}
    if as_json:
        print_json(data)
        return
    cost = "-" if res.cost_usd is None else f"${res.cost_usd:,.0f}"
    console.print(f"{res.devices} devices, {best.layout.label} ({best.fidelity}): "
                  f"{best.tokens_per_s:.4g} tokens/s (need {res.required_tokens_per_s:.4g}); "
                  f"{n_tokens:.3g} tokens in {res.train_days:.1f} days, {cost}")
    console.print("sizes tried: " + ", ".join(
        f"{k}: {v:.3g} tok/s" for k, v in sorted(res.visited.items())))


def register(app: typer.Typer) -> None:
    app.command("sweep")(user_errors(sweep))
    app.command("plan")(user_errors(plan))
    app.command("capacity")(user_errors(capacity))
