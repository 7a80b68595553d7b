"""``moesim serve``: simulate a serving scenario's request stream and write its report
(``moesim run`` does the same for a scenario whose workload is ``kind: serving``)."""

from __future__ import annotations

from pathlib import Path

import typer

from moesim.cli.common import SET_HELP, attributed, plain_console, print_json, user_errors


def serve_scenario(spec, path: Path, out: Path | None, as_json: bool) -> None:  # noqa: ANN001
    """Simulate ``spec`` (already loaded from ``path``), write the report, print the summary."""
    from moesim.cli.run import default_out
    from moesim.report.serving import print_serving_summary, write_serving_report
    from moesim.serving import simulate_serving

    with attributed(path):
        result = simulate_serving(spec)
    files = write_serving_report(result, out or default_out(spec.name))
    if as_json:
        typer.echo(result.to_json(include_requests=False))
        return
    print_serving_summary(result, plain_console)
    for _, p in sorted(files.items()):
        plain_console.print(f"wrote {p}")


def _row_json(r) -> dict:  # noqa: ANN001
    return {"deployment": r.label, "devices": r.num_devices, "score_per_device": r.score,
            "goodput_requests_per_s": r.goodput_requests_per_s,
            "slo_attainment": r.slo_attainment, "output_tokens_per_s": r.output_tokens_per_s,
            "ttft_p90_s": r.ttft_p90_s, "tpot_p90_s": r.tpot_p90_s, "layout": r.layout}


def _print_rows(rows, objective: str) -> None:  # noqa: ANN001
    from rich.table import Table

    table = Table(title=f"deployments by {objective}")
    for col in ("deployment", "score / device", "goodput req/s", "SLO met", "out tok/s",
                "TTFT p90 ms", "TPOT p90 ms"):
        table.add_column(col, justify="left" if col == "deployment" else "right")
    for r in rows:
        table.add_row(r.label, f"{r.score:.4g}",
                      "-" if r.goodput_requests_per_s is None else f"{r.goodput_requests_per_s:.3g}",
                      "-" if r.slo_attainment is None else f"{r.slo_attainment * 100:.1f}%",
                      f"{r.output_tokens_per_s:,.0f}", f"{r.ttft_p90_s * 1e3:,.1f}",
                      f"{r.tpot_p90_s * 1e3:,.1f}")
    plain_console.print(table)


def plan_serving_command(spec, devices: int | None, top: int, requests: int,  # noqa: ANN001
                         as_json: bool) -> None:
    """``moesim plan`` on a serving scenario: rank deployments of the scenario's (or
    ``devices``') nodes."""
    from moesim.errors import InfeasibleError
    from moesim.plan.serving import plan_serving

    per = spec.topology_spec.devices_per_domain
    nodes = max(1, (devices or spec.devices) // per)
    res = plan_serving(spec, nodes, requests=requests)
    if not res.ranked:
        raise InfeasibleError(f"none of the {res.considered} deployments of {nodes} nodes "
                              f"serves the workload; excluded: {dict(res.excluded)}",
                              reason="plan")
    if as_json:
        print_json({"nodes": nodes, "objective": res.objective, "considered": res.considered,
                    "excluded": dict(res.excluded),
                    "ranked": [_row_json(r) for r in res.ranked[:top]]})
        return
    _print_rows(res.ranked[:top], res.objective)
    plain_console.print(f"{res.considered} deployments of {nodes} nodes simulated "
                        f"({requests} requests each); excluded: {dict(res.excluded) or 'none'}")


def register(app: typer.Typer) -> None:
    @app.command("serve-capacity")
    @user_errors
    def serve_capacity(
        scenario: Path = typer.Argument(..., help="Serving scenario YAML with SLOs."),
        attainment: float = typer.Option(0.9, "--attainment", min=0.0, max=1.0,
                                         help="Share of requests that must meet both SLOs."),
        max_nodes: int = typer.Option(None, "--max-nodes", min=1, max=1 << 15,
                                      help="Largest deployment tried (default: the topology)."),
        requests: int = typer.Option(1000, "--requests", min=1, max=1_000_000,
                                     help="Requests simulated per deployment."),
        sets: list[str] = typer.Option([], "--set", help=SET_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print machine-readable results."),
    ) -> None:
        """The fewest nodes (and their best deployment) that meet the SLOs at the workload's
        arrival rate."""
        from moesim.errors import InfeasibleError, SpecError
        from moesim.plan.serving import serving_capacity
        from moesim.specs.loader import load_scenario

        with attributed(scenario):
            spec = load_scenario(scenario, tuple(sets))
            if not spec.is_serving:
                raise SpecError("workload.kind is 'training'; use `moesim capacity`",
                                field="workload.kind")
            res = serving_capacity(spec, attainment=attainment, max_nodes=max_nodes,
                                   requests=requests)
        tried = {str(k): v for k, v in res.tried.items()}
        if res.nodes is None or res.plan is None or res.plan.best is None:
            raise InfeasibleError(f"no deployment up to {max(res.tried, default=0)} nodes meets "
                                  f"the SLOs for {attainment:.0%} of requests; best attainment "
                                  f"per node count: {tried}", reason="capacity")
        best = res.plan.best
        if as_json:
            print_json({"nodes": res.nodes, "devices": best.num_devices,
                        "best": _row_json(best), "tried": tried})
            return
        plain_console.print(f"{res.nodes} nodes ({best.num_devices} devices): {best.label}, "
                            f"{(best.slo_attainment or 0) * 100:.1f}% of requests meet the SLOs")
        plain_console.print("best attainment by nodes: " + ", ".join(
            f"{k}: {'-' if v is None else f'{v * 100:.0f}%'}" for k, v in tried.items()))

    @app.command()
    @user_errors
    def serve(
        scenario: Path = typer.Argument(..., help="Serving scenario YAML (workload.kind: serving)."),
        sets: list[str] = typer.Option([], "--set", help=SET_HELP),
        out: Path | None = typer.Option(None, "--out", help="Report folder (default reports/<scenario>/)."),
        as_json: bool = typer.Option(False, "--json", help="Print the result JSON to stdout."),
    ) -> None:
        """Simulate a serving scenario: TTFT/TPOT percentiles, throughput per node, goodput."""
        from moesim.errors import SpecError
        from moesim.specs.loader import load_scenario

        with attributed(scenario):
            spec = load_scenario(scenario, tuple(sets))
        if not spec.is_serving:
            raise SpecError("workload.kind is 'training'; `moesim serve` simulates serving "
                            "scenarios (use `moesim run` for a training step)",
                            file=str(scenario), field="workload.kind")
        serve_scenario(spec, scenario, out, as_json)
