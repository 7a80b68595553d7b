"""``moesim goodput``: the scenario's own layout over a whole run, with failures, checkpoints,
stragglers, cost and energy (docs/goodput.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from moesim.cli.common import (
    SET_HELP,
    attributed,
    check_choice,
    console,
    print_json,
    user_errors,
)
from moesim.errors import SpecError
from moesim.specs.bounds import MAX_DEVICES, MAX_PRICE_PER_DEVICE_HOUR
from moesim.units import eng, parse_count

MAX_TRAIN_TOKENS = 1e18


def _tokens(text: str) -> float:
    try:
        n = parse_count(text)
    except (ValueError, OverflowError):
        n = float("nan")
    if not (1 <= n <= MAX_TRAIN_TOKENS):
        raise SpecError(f"moesim goodput: --tokens {text[:40]!r}: expected a count from 1 to 1e18 "
                        "such as 15T or 2.5B", field="tokens")
    return n


def _rows(d: dict[str, Any]) -> list[tuple[str, str]]:
    def days(k: str) -> str:
        return f"{d[k]:.2f}"

    def money(k: str) -> str:
        return "-" if d[k] is None else f"${d[k]:,.0f}"

    def mwh(k: str) -> str:
        return "-" if d[k] is None else f"{d[k]:,.0f}"

    ck = d["checkpoint"]
    kinds = ", ".join(f"{k} {eng(v, digits=3)}" for k, v in sorted(d["interruptions_per_day_by_kind"].items()))
    sim = d["interval_simulated_s"]
    return [
        ("devices", f"{d['devices']:,}"),
        ("ideal tokens/s", f"{eng(d['ideal_tokens_per_s'], digits=4)}"),
        ("straggler factor (slowest rank)", f"{d['straggler_factor']:.4f}"),
        ("interruptions per day", f"{eng(d['interruptions_per_day'], digits=3)} ({kinds})"),
        ("MTBF of the job", f"{eng(d['mtbf_s'] / 3600, digits=3)} h"),
        ("checkpoint", f"{eng(ck['bytes'] / 1e12, digits=3)} TB: write {eng(ck['write_s'], digits=3)} s, blocks "
                       f"{eng(ck['blocking_s'], digits=3)} s, reload {eng(ck['reload_s'], digits=3)} s"),
        ("recovery per interruption", f"{eng(d['recovery_s'] / 60, digits=3)} min (detect + restart + reload)"),
        ("checkpoint interval", f"{eng(d['interval_s'] / 60, digits=3)} min priced; Young "
                                f"{eng(d['interval_young_s'] / 60, digits=3)}, Daly "
                                f"{eng(d['interval_daly_s'] / 60, digits=3)}"
                                + ("" if sim is None else f", simulated {eng(sim / 60, digits=3)}")),
        ("lost work per interruption", f"{eng(d['lost_work_per_failure_s'] / 60, digits=3)} min"),
        ("expected interruptions", f"{d['expected_failures']:.0f}"),
        ("days: ideal / goodput", f"{days('ideal_days')} / {days('goodput_days')} "
                                  f"({100 * d['efficiency']:.1f}% effective)"),
        ("days: Monte Carlo p50 / p90", f"{days('p50_days')} / {days('p90_days')} "
                                        f"({d['runs']} runs, seed {d['seed']})"),
        ("cost: ideal / goodput", f"{money('ideal_cost_usd')} / {money('goodput_cost_usd')}"),
        ("energy MWh: ideal / goodput", f"{mwh('ideal_energy_mwh')} / "
                                        f"{mwh('goodput_energy_mwh')} (PUE {d['pue']:g})"),
        ("accelerators alone, MWh", f"{mwh('goodput_device_energy_mwh')} (board power, "
                                    "no host or PUE)"),
        ("device-hours", f"{d['device_hours']:,.0f}"),
    ]


def register(app: typer.Typer) -> None:
    @app.command("goodput")
    @user_errors
    def goodput(
        scenario: Path = typer.Argument(..., help="A scenario YAML file (its own layout is used)."),
        tokens: str = typer.Option(..., "--tokens", help="Tokens to train, e.g. 15T."),
        devices: int = typer.Option(None, "--devices", min=1, max=MAX_DEVICES,
                                    help="Devices (default: the scenario's)."),
        fidelity: str = typer.Option("des", "--fidelity", help="des or analytic."),
        goodput_file: Path = typer.Option(None, "--goodput",
                                          help="YAML over topologies/goodput/defaults.yaml."),
        price: float = typer.Option(None, "--price-per-device-hour", min=0,
                                    max=MAX_PRICE_PER_DEVICE_HOUR, help="USD (default: topology)."),
        sets: list[str] = typer.Option([], "--set", help=SET_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print machine-readable results."),
    ) -> None:
        """Time, cost and energy of a whole run of the scenario's layout: ideal and goodput.

        Failures (per accelerator, host, link, software), checkpoints (Young/Daly interval,
        Monte Carlo p50/p90 days) and stragglers (the slowest of N ranks) over one simulated
        step. With stragglers set, the engine's straggler option is run too (a seeded draw for
        des, the expectation for analytic) beside the closed-form factor."""
        from moesim.engine import Simulation
        from moesim.goodput import estimate_goodput, goodput_for
        from moesim.plan.capacity import compute_fraction
        from moesim.plan.evaluate import result_metrics
        from moesim.plan.search import sized
        from moesim.specs.loader import load_scenario

        check_choice("goodput", "--fidelity", fidelity, ("des", "analytic"))
        n_tokens = _tokens(tokens)
        if price is not None and price != price:
            raise SpecError("moesim goodput: --price-per-device-hour must be a number",
                            field="price")
        with attributed(scenario):
            s = load_scenario(scenario, tuple(sets))
        spec = goodput_for(s, goodput_file)
        base = sized(s, devices or s.devices)
        with attributed(scenario):
            result = Simulation(base, fidelity=fidelity, include_memory=False).run()  # type: ignore[arg-type]
        metrics = result_metrics(result)
        est = estimate_goodput(
            base, spec, n_tokens, result.tokens_per_s, compute_fraction=compute_fraction(metrics),
            price_per_device_hour=price if price is not None
            else base.topology_spec.price_per_device_hour, simulate_interval=True)
        data = est.summary()
        if spec.stragglers.active:
            sim = Simulation(base, fidelity=fidelity, include_memory=False,  # type: ignore[arg-type]
                             stragglers=spec.stragglers)
            slow = sim.run()
            data["engine_straggler_step_ratio"] = slow.step_time_s / result.step_time_s
            data["engine_straggler_stage_factors"] = sim.straggler_factors
        if as_json:
            print_json(data)
            return
        table = Table(title=f"{s.name}: {eng(n_tokens, digits=3)} tokens, {fidelity} step "
                            f"{eng(result.step_time_s, digits=4)} s")
        table.add_column("goodput")
        table.add_column("value", justify="right")
        for k, v in _rows(data):
            table.add_row(k, v)
        if "engine_straggler_step_ratio" in data:
            table.add_row("engine straggler step / ideal step",
                          f"{data['engine_straggler_step_ratio']:.4f}")
        console.print(table)
