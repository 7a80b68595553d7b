"""``moesim serve``: simulate a serving scenario's request stream and write its report
(``moesim run`` does the same for a scenario whose workload is ``kind: serving``)."""

from __future__ import annotations

from pathlib import Path

import typer

from moesim.cli.common import SET_HELP, attributed, plain_console, user_errors


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


def register(app: typer.Typer) -> None:
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
