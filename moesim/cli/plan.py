"""``moesim sweep``, ``moesim plan`` and ``moesim capacity``: thin wrappers over moesim.plan."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from moesim import shipped
from moesim.cli.common import (
    SET_HELP,
    ObjectiveChoice,
    Update,
    console,
    err_console,
    fail,
    plain_console,
    print_json,
    progress,
    progress_shown,
    user_errors,
    value_of,
)
from moesim.constants import (
    DEFAULT_ANALYTIC_BUDGET,
    ENGINE_EVALUATOR,
    ENGINE_MEMORY,
    MAX_WORKERS,
    PLAN_EVALUATOR,
)
from moesim.errors import InfeasibleError, SpecError
from moesim.io import safe_name
from moesim.specs.bounds import MAX_DEVICES, MAX_PRICE_PER_DEVICE_HOUR
from moesim.units import GIB, eng, parse_count

if TYPE_CHECKING:
    from rich.progress import Progress

    from moesim.plan.capacity import CapacityResult
    from moesim.plan.search import PlanResult
    from moesim.specs.goodput import GoodputSpec
    from moesim.specs.scenario import ScenarioSpec

# Tokens one training run may ask for: 1e18, 50,000x the 15T of today's largest runs.
MAX_TRAIN_TOKENS = 1e18
EVALUATOR_HELP = "MODULE:FUNCTION returning metrics for (scenario, fidelity) (default: the engine)"
GOODPUT_HELP = ("YAML with goodput sections (reliability, checkpoint, stragglers, host, pue) over "
                "topologies/goodput/defaults.yaml; docs/goodput.md")
IDEAL_HELP = "Price the failure-free run only (no failures, checkpoints or stragglers)."


def _goodput(s: ScenarioSpec, path: Path | None, ideal: bool) -> GoodputSpec | None:
    if ideal:
        if path is not None:
            raise SpecError("moesim: --ideal and --goodput exclude each other; give one",
                            field="goodput")
        return None
    from moesim.goodput import goodput_for

    return goodput_for(s, path)


def _progress() -> Progress:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("failed {task.fields[failed]}"), TimeElapsedColumn(),
                    TextColumn("ETA"), TimeRemainingColumn(), console=err_console,
                    disable=not progress_shown())


def _bar(update: Update) -> Any:
    """A plan_layouts progress callback drawing on ``update`` (moesim.cli.common.progress)."""
    def say(phase: str, done: int, total: int) -> None:
        update(description=escape(phase), completed=done, total=max(total, 1))
    return say


def sweep(
    file: Path = typer.Argument(..., help="A sweep YAML file or a shipped sweep's name."),
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
    from moesim.plan.executors import make_executor
    from moesim.plan.figures import write_sweep_html
    from moesim.plan.sweep import run_sweep
    from moesim.specs.sweep import load_sweep

    file = shipped.resolve(file, "sweep")  # a path, or a shipped sweep's name
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


def _gib(v: Any) -> str:
    return "-" if v is None else f"{v / GIB:.1f}"


def _print_plan(res: PlanResult, top: int) -> None:
    from moesim.plan.search import summary_rows

    table = Table(title=f"{escape(res.scenario)} on {res.devices} devices: best {top} of "
                  f"{len(res.ranked)} ranked ({res.fitting:,} fit, {res.considered:,} considered)")
    good = res.goodput is not None
    cols = ["#", "layout", "fidelity", "tokens/s", *(["goodput tok/s"] if good else []),
            "step s", "MFU", "peak GiB", "headroom GiB", "USD/Mtok"]
    for col in cols:
        table.add_column(col, justify="left" if col in ("layout", "fidelity") else "right")
    for r in summary_rows(res, top):
        usd = r["goodput_usd_per_million_tokens" if good else "usd_per_million_tokens"]
        table.add_row(str(r["rank"]), r["layout"], r["fidelity"], eng(r["tokens_per_s"]),
                      *([eng(r["goodput_tokens_per_s"])] if good else []),
                      _fmt(r["step_time_s"], spec=".3f"), _fmt(r["mfu"], spec=".3f"),
                      _gib(r["peak_bytes"]), _gib(r["headroom_bytes"]), _fmt(usd, spec=".3f"))
    out = console  # piped: as wide as the rows (moesim.cli.common.WideWhenPiped)
    out.print(table)
    if good:
        out.print("goodput tok/s: the long-run rate after failures, checkpoints and stragglers "
                  "(topologies/goodput/defaults.yaml); USD/Mtok at that rate; --ideal drops it")
    ex = Table(title="excluded layouts")
    ex.add_column("reason")
    ex.add_column("layouts", justify="right")
    for reason, n in sorted(res.excluded.items(), key=lambda kv: (-kv[1], kv[0])):
        ex.add_row(reason, str(n))
    out.print(ex)


def _plan_json(res: PlanResult, top: int) -> dict[str, Any]:
    from moesim.plan.search import summary_rows

    return {"scenario": res.scenario, "devices": res.devices, "objective": res.objective,
            "goodput": res.goodput is not None,
            "considered": res.considered, "fitting": res.fitting, "ranked": len(res.ranked),
            "excluded": dict(sorted(res.excluded.items())), "top": summary_rows(res, top)}


def plan(
    scenario: Path = typer.Argument(..., help="A scenario YAML file (its layout is ignored)."),
    devices: int = typer.Option(None, "--devices", min=1, max=MAX_DEVICES,
                                help="Devices (default: scenario's)."),
    objective: ObjectiveChoice = typer.Option(  # type: ignore[valid-type]
        "throughput", "--objective", help="Rank by throughput or by cost per token."),
    top: int = typer.Option(10, "--top", min=1, max=10_000, help="Layouts to print."),
    des_top: int = typer.Option(3, "--des-top", min=0, max=1_000,
                                help="Best analytic layouts to simulate."),
    budget: int = typer.Option(DEFAULT_ANALYTIC_BUDGET, "--analytic-budget", min=1,
                               max=100_000, help="Most layouts ranked with the analytic engine."),
    workers: int = typer.Option(None, "--workers", min=1, max=MAX_WORKERS,
                                help="Processes (default: all cores)."),
    out: Path = typer.Option(Path("reports"), "--out", help="Folder for the Pareto HTML page."),
    price: float = typer.Option(None, "--price-per-device-hour", min=0,
                                max=MAX_PRICE_PER_DEVICE_HOUR, help="USD (default: topology)."),
    sets: list[str] = typer.Option([], "--set", help=SET_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable results."),
    goodput_file: Path = typer.Option(None, "--goodput", help=GOODPUT_HELP),
    ideal: bool = typer.Option(False, "--ideal", help=IDEAL_HELP),
    evaluator: str = typer.Option(PLAN_EVALUATOR, "--evaluator", hidden=True),
    memory: str = typer.Option(ENGINE_MEMORY, "--memory", hidden=True),
    requests: int = typer.Option(1000, "--requests", min=1, max=1_000_000,
                                 help="Serving scenarios: requests simulated per deployment."),
) -> None:
    """Search every layout on N devices; print the best and why the rest were excluded (a
    serving scenario: every prefill/decode split and EP of N devices, by goodput per device).

    USD per million tokens needs a price per device-hour: the topology's (every shipped
    system but GB300 has one, citing its price list) or --price-per-device-hour. Each ranked
    layout also shows its goodput: the long-run tokens/s after failures, checkpoints and
    stragglers (--ideal leaves it out)."""
    from moesim.plan.evaluate import Backend
    from moesim.plan.executors import LocalExecutor, default_workers
    from moesim.plan.figures import write_plan_html
    from moesim.plan.search import plan_layouts
    from moesim.specs.loader import load_scenario

    objective = value_of(objective)
    s = load_scenario(scenario, sets)
    if s.is_serving:
        from moesim.cli.serve import plan_serving_command

        plan_serving_command(s, devices, top, requests, as_json)
        return
    missing = _missing_price(s, price)
    if missing and objective == "cost" and not as_json:
        err_console.print(f"moesim: warning: {escape(missing)}", soft_wrap=True)
    good = _goodput(s, goodput_file, ideal)
    n = devices or s.devices
    w = workers or default_workers()
    with progress(f"plan {s.name[:40]}") as update:
        res = plan_layouts(s, n, objective=objective, des_top=des_top,  # type: ignore[arg-type]
                           backend=Backend(evaluator, memory), analytic_budget=budget,
                           executor=LocalExecutor(w) if w > 1 else None,
                           price_per_device_hour=price, goodput=good, progress=_bar(update))
    if not res.ranked:
        raise InfeasibleError(f"none of the {res.considered} layouts on {n} devices fits; "
                              f"excluded: {dict(res.excluded.most_common())}", reason="plan")
    path = write_plan_html(res, out / f"plan-{safe_name(s.name, default='scenario')}-{n}.html",
                           versus="cost" if objective == "cost" else "memory")
    if as_json:
        print_json(_plan_json(res, top) | {"html": str(path), "missing_price": missing or None})
        return
    _print_plan(res, top)
    if missing:
        plain_console.print(f"USD/Mtok: {missing}")
    plain_console.print(f"wrote {path}")


def _missing_price(s: Any, price: float | None) -> str:
    """Which accelerator has no price per device-hour, and what to do ("" when priced)."""
    topo = s.topology_spec
    if price is not None or topo.price_per_device_hour is not None:
        return ""
    return (f"the {topo.accelerator.name} ({topo.name}) has no price per device-hour, so "
            "USD per million tokens is not computed; give one with --price-per-device-hour "
            "or --set topology.price_per_device_hour=USD")


def capacity(
    scenario: Path = typer.Argument(..., help="A scenario YAML file (its layout is ignored)."),
    tokens: str = typer.Option(..., "--tokens", help="Tokens to train, e.g. 15T or 2.5B: k M G "
                               "T are 10^3 10^6 10^9 10^12 (B = G, billion), Ki Mi Gi Ti 2^10..."),
    days: float = typer.Option(..., "--days", min=1e-6, max=1e5,
                               help="Wall-clock days allowed."),
    price: float = typer.Option(None, "--price-per-device-hour", min=0,
                                max=MAX_PRICE_PER_DEVICE_HOUR, help="USD (default: topology)."),
    devices: int = typer.Option(None, "--devices", min=1, max=MAX_DEVICES,
                                help="Ask about this one size only."),
    keep_layout: bool = typer.Option(False, "--keep-layout",
                                     help="Price the scenario's own layout (no search)."),
    workers: int = typer.Option(None, "--workers", min=1, max=MAX_WORKERS,
                                help="Processes (default: all cores)."),
    sets: list[str] = typer.Option([], "--set", help=SET_HELP),
    goodput_file: Path = typer.Option(None, "--goodput", help=GOODPUT_HELP),
    ideal: bool = typer.Option(False, "--ideal", help=IDEAL_HELP),
    out: Path = typer.Option(Path("reports"), "--out", help="Folder for the days-vs-devices page."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable results."),
    evaluator: str = typer.Option(PLAN_EVALUATOR, "--evaluator", hidden=True),
    memory: str = typer.Option(ENGINE_MEMORY, "--memory", hidden=True),
) -> None:
    """The smallest device count (multiples of the scale-up domain) that trains in time.

    By default a size must finish within the days with failures, checkpoints and stragglers
    priced (goodput, docs/goodput.md); the ideal days, cost and energy are shown beside."""
    from moesim.plan.capacity import plan_capacity
    from moesim.plan.capacity_page import write_capacity_html
    from moesim.plan.evaluate import Backend
    from moesim.plan.executors import LocalExecutor, default_workers
    from moesim.specs.loader import load_scenario

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
    good = _goodput(s, goodput_file, ideal)
    w = workers or default_workers()
    with progress(f"capacity {s.name[:40]}") as update:
        res = plan_capacity(s, n_tokens, days, price_per_device_hour=price,
                            backend=Backend(evaluator, memory), goodput=good, devices=devices,
                            keep_layout=keep_layout,
                            executor_factory=(lambda: LocalExecutor(w)) if w > 1 else None,
                            progress=_bar(update))
    assert res.plan is not None and res.plan.best is not None
    path = write_capacity_html(res, out / f"capacity-{safe_name(s.name, default='scenario')}.html",
                               s.name)
    if as_json:
        print_json(_capacity_json(res) | {"html": str(path)})
        return
    _print_capacity(res, n_tokens, _missing_price(s, price))
    plain_console.print(f"wrote {path}")


def _capacity_json(res: CapacityResult) -> dict[str, Any]:
    assert res.plan is not None and res.plan.best is not None
    best = res.plan.best
    g = res.goodput
    return {"devices": res.devices, "layout": best.layout.label, "fidelity": best.fidelity,
            "tokens_per_s": best.tokens_per_s, "required_tokens_per_s": res.required_tokens_per_s,
            "train_days": res.train_days, "ideal_days": res.ideal_days,
            "cost_usd": res.cost_usd, "ideal_cost_usd": res.ideal_cost_usd,
            "energy_mwh": res.energy_mwh, "price_per_device_hour": res.price_per_device_hour,
            "goodput": g.summary() if g else None,
            "visited": {str(k): v for k, v in sorted(res.visited.items())},
            "visited_goodput_days": {str(k): v.expected_wall_s / 86400.0
                                     for k, v in sorted(res.visited_goodput.items())}}


def _money(v: float | None) -> str:
    return "-" if v is None else f"${v:,.0f}"


def _print_capacity(res: CapacityResult, n_tokens: float, missing: str) -> None:
    assert res.plan is not None and res.plan.best is not None
    best, g = res.plan.best, res.goodput
    rate = f"{eng(best.tokens_per_s, 'tokens/s')} ideal"
    if g is not None:
        rate += f", {eng(g.goodput_tokens_per_s, 'tokens/s')} goodput ({100 * g.efficiency:.1f}%)"
    console.print(f"{res.devices:,} devices, {best.layout.label} ({best.fidelity}): {rate} "
                  f"(need {eng(res.required_tokens_per_s, 'tokens/s')})")
    if missing:
        console.print(f"no cost: {missing}")
    if g is None:
        console.print(f"{eng(n_tokens, 'tokens')} in {res.train_days:.1f} days (ideal), "
                      f"{_money(res.cost_usd)}")
    else:
        mwh = g.energy_mwh(g.expected_wall_s)
        ideal_mwh = g.energy_mwh(g.ideal_s)
        console.print(
            f"{eng(n_tokens, 'tokens')}: ideal {res.ideal_days:.1f} days, goodput "
            f"{res.train_days:.1f} days (p50 {g.p50_s / 86400:.1f}, p90 {g.p90_s / 86400:.1f}, "
            f"{g.runs} runs)")
        console.print(
            f"failures: {eng(g.interruptions_per_day, digits=3)}/day (MTBF "
            f"{eng(g.mtbf_s / 3600, 'h', digits=3)}), "
            f"{g.expected_failures:,.0f} expected; checkpoint {eng(g.checkpoint.bytes, 'B', 3)} "
            f"in {eng(g.checkpoint.blocking_s, digits=3)} s every {eng(g.interval_s / 60, digits=3)} min (Daly; Young "
            f"{eng(g.interval_young_s / 60, digits=3)}); {eng(g.lost_work_per_failure_s / 60, digits=3)} min of work "
            f"and {eng(g.restart_per_failure_s / 60, digits=3)} min of recovery per interruption")
        energy = ("energy not published for this accelerator" if mwh is None else
                  f"energy {mwh:,.0f} MWh (ideal {ideal_mwh:,.0f}) at PUE {g.pue:g}")
        console.print(f"cost {_money(res.cost_usd)} (ideal {_money(res.ideal_cost_usd)}) at "
                      f"{_money_rate(res.price_per_device_hour)}; {energy}")
    console.print("sizes tried: " + ", ".join(
        f"{k:,}: {eng(v, 'tokens/s')}" + (f" {eng(res.visited_goodput[k].expected_wall_s / 86400, digits=3)} d"
                                 if k in res.visited_goodput else "")
        for k, v in sorted(res.visited.items())))


def _money_rate(price: float | None) -> str:
    return "no price" if price is None else f"${price:g}/device-hour"


def register(app: typer.Typer) -> None:
    app.command("sweep")(user_errors(sweep))
    app.command("plan")(user_errors(plan))
    app.command("capacity")(user_errors(capacity))
