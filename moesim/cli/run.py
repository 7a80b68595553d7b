"""``moesim run``: simulate one training step of a scenario and write its report (a serving
scenario runs its request stream, as ``moesim serve`` does)."""

from __future__ import annotations

from pathlib import Path

import typer

from moesim.cli.common import SET_HELP, attributed, check_choice, plain_console, user_errors
from moesim.io import safe_name

DEFAULT_SCENARIO = Path("scenarios/default.yaml")
FALLBACK_SCENARIO = Path("scenarios/mixtral-8x7b-64xh100.yaml")
REPORTS = Path("reports")


def _default_scenario() -> Path:
    return DEFAULT_SCENARIO if DEFAULT_SCENARIO.exists() else FALLBACK_SCENARIO


def default_out(name: str) -> Path:
    """reports/<name>, with the name made one safe path component (moesim.io.safe_name)."""
    return REPORTS / safe_name(name, default="scenario")


def _write(result, out_dir: Path) -> dict[str, Path]:  # noqa: ANN001
    """result.json, summary.csv, report.html and trace.json, each written atomically."""
    from moesim.report import write_report

    return dict(write_report(result, out_dir))


def register(app: typer.Typer) -> None:
    @app.command()
    @user_errors
    def run(
        scenario: Path | None = typer.Argument(None, help="Scenario YAML (default: scenarios/default.yaml)."),
        sets: list[str] = typer.Option([], "--set", help=SET_HELP),
        fidelity: str = typer.Option("des", "--fidelity", help="des (event simulation) or analytic."),
        out: Path | None = typer.Option(None, "--out", help="Report folder (default reports/<scenario>/)."),
        as_json: bool = typer.Option(False, "--json", help="Print the result JSON to stdout."),
    ) -> None:
        """Simulate one training step (step time, throughput, MFU, breakdown, memory), or a
        serving scenario's request stream (TTFT, TPOT, throughput, goodput)."""
        from moesim.engine import Simulation
        from moesim.specs.loader import load_scenario

        check_choice("run", "--fidelity", fidelity, ("des", "analytic"))
        path = scenario or _default_scenario()
        with attributed(path):
            spec = load_scenario(path, tuple(sets))
        if spec.is_serving:  # the request-level simulation (moesim serve)
            from moesim.cli.serve import serve_scenario

            serve_scenario(spec, path, out, as_json)
            return
        with attributed(path):
            result = Simulation(spec, fidelity=fidelity).run()  # type: ignore[arg-type]
        # The scenario's name is text from its file: it names a folder inside reports/ only.
        out_dir = out or default_out(spec.name)
        files = _write(result, out_dir)
        if as_json:
            typer.echo(result.to_json(include_trace=False))
            return
        from moesim.report import print_summary

        print_summary(result, plain_console)  # the same table `moesim report` prints
        for name, p in sorted(files.items()):
            plain_console.print(f"wrote {p}" if name else str(p))
