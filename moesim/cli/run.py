"""``moesim run``: simulate one training step of a scenario and write its report."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from moesim.cli.common import SET_HELP, console, user_errors

DEFAULT_SCENARIO = Path("scenarios/default.yaml")
FALLBACK_SCENARIO = Path("scenarios/mixtral-8x7b-64xh100.yaml")


def _default_scenario() -> Path:
    return DEFAULT_SCENARIO if DEFAULT_SCENARIO.exists() else FALLBACK_SCENARIO


def _summary(result) -> Table:  # noqa: ANN001
    t = Table(title=f"{result.scenario} ({result.fidelity})", show_header=True)
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_row("step time", f"{result.step_time_s:.3f} s")
    t.add_row("tokens/s", f"{result.tokens_per_s:,.0f}")
    t.add_row("tokens/s per device", f"{result.tokens_per_s_per_device:,.0f}")
    t.add_row("model TFLOP/s per device", f"{result.model_tflops_per_device:.1f}")
    t.add_row("MFU (BF16 peak)", f"{100 * result.mfu:.1f} %")
    b = result.breakdown
    for k, v in b.compute_s.items():
        t.add_row(f"  compute: {k}", f"{v:.3f} s")
    for k, v in b.exposed_communication_s.items():
        t.add_row(f"  exposed comm: {k}", f"{v:.3f} s")
    t.add_row("  pipeline bubble", f"{b.pipeline_bubble_s:.3f} s")
    t.add_row("  imbalance wait", f"{b.imbalance_wait_s:.3f} s")
    t.add_row("  optimizer", f"{b.optimizer_s:.3f} s")
    t.add_row("fits memory", "yes" if result.fits_memory else "NO")
    return t


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
        """Simulate one training step: step time, throughput, MFU, breakdown, memory."""
        from moesim.engine import Simulation
        from moesim.errors import SpecError
        from moesim.specs.loader import load_scenario

        if fidelity not in ("des", "analytic"):
            raise SpecError(f"--fidelity={fidelity!r} is not valid; valid: des, analytic")
        path = scenario or _default_scenario()
        spec = load_scenario(path, tuple(sets))
        result = Simulation(spec, fidelity=fidelity).run()  # type: ignore[arg-type]
        out_dir = out or Path("reports") / spec.name
        files = _write(result, out_dir)
        if as_json:
            typer.echo(result.to_json(include_trace=False))
            return
        console.print(_summary(result))
        for name, p in sorted(files.items()):
            console.print(f"wrote {p}" if name else str(p))
