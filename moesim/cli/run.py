"""``moesim run``: simulate one training step of a scenario and write its report (a serving
scenario runs its request stream, as ``moesim serve`` does)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import typer
from rich.markup import escape

import moesim
from moesim import shipped
from moesim.cli.common import (
    EXIT_INFEASIBLE,
    SET_HELP,
    FidelityChoice,
    attributed,
    fail,
    plain_console,
    progress,
    user_errors,
    value_of,
)
from moesim.io import safe_name
from moesim.units import GIB

REPORTS = Path("reports")


def _default_scenario() -> Path:
    """The shipped ``scenarios/default.yaml`` (the checkout's, or the wheel's copy)."""
    return shipped.shipped_dir("scenarios") / "default.yaml"


def default_out(name: str, inputs_hash: str = "") -> Path:
    """reports/<name>-<hash of the resolved inputs>, the name made one safe path component
    (moesim.io.safe_name): runs of other inputs never overwrite each other, a rerun of the
    same inputs writes the same folder."""
    base = safe_name(name, default="scenario")
    return REPORTS / (f"{base}-{inputs_hash}" if inputs_hash else base)


def _write(result, out_dir: Path) -> dict[str, Path]:  # noqa: ANN001
    """result.json, summary.csv, report.html and trace.json, each written atomically."""
    from moesim.report import write_report

    return dict(write_report(result, out_dir))


def register(app: typer.Typer) -> None:
    @app.command()
    @user_errors
    def run(
        scenario: Path | None = typer.Argument(None, help="Scenario YAML, or a shipped scenario's name (default: the shipped default)."),
        sets: list[str] = typer.Option([], "--set", help=SET_HELP),
        fidelity: FidelityChoice = typer.Option(  # type: ignore[valid-type]
            "des", "--fidelity", help="des (event simulation) or analytic (closed form)."),
        out: Path | None = typer.Option(None, "--out", help="Report folder (default "
                                        "reports/<scenario>-<inputs hash>/)."),
        as_json: bool = typer.Option(False, "--json", help="Print the result JSON to stdout."),
        allow_oom: bool = typer.Option(False, "--allow-oom",
                                       help="Exit 0 even when the layout does not fit in memory."),
    ) -> None:
        """Simulate one training step (step time, throughput, MFU, breakdown, memory), or a
        serving scenario's request stream (TTFT, TPOT, throughput, goodput).

        A training layout that does not fit in device memory (the verdict `moesim memory`
        gives) still writes its report, then exits with code 3 unless --allow-oom."""
        # moesim's version (git describe in a checkout: four git processes, ~30 ms of waiting)
        # is looked up beside the simulation; provenance reads it when the thread is done
        version = threading.Thread(target=lambda: moesim.__version__, name="moesim-version")
        version.start()
        from moesim.engine import Simulation
        from moesim.results.provenance import provenance
        from moesim.specs.loader import load_scenario

        fidelity = value_of(fidelity)
        path = scenario or _default_scenario()
        with attributed(path), progress(f"simulating ({fidelity})") as update:
            spec = load_scenario(path, tuple(sets))
            if spec.is_serving:  # the request-level simulation (moesim serve)
                from moesim.cli.serve import serve_scenario

                serve_scenario(spec, path, out, as_json)
                return
            update(description=f"simulating {escape(spec.name[:40])} ({fidelity})")
            result = Simulation(spec, fidelity=fidelity).run()  # type: ignore[arg-type]
        version.join()
        prov = provenance(spec, fidelity, scenario_file=scenario or "default", overrides=sets)
        result = result.model_copy(update={"provenance": prov})
        # The scenario's name is text from its file: it names a folder inside reports/ only.
        out_dir = out or default_out(spec.name, prov.inputs_hash)
        with progress(f"writing {out_dir}"[:60]):
            files = _write(result, out_dir)
        if as_json:
            typer.echo(result.to_json(include_trace=False))
            _fit_verdict(result, path, allow_oom)
            return
        from moesim.report import print_summary

        print_summary(result, plain_console)  # the same table `moesim report` prints
        for name, p in sorted(files.items()):
            plain_console.print(f"wrote {p}" if name else str(p))
        _fit_verdict(result, path, allow_oom)


def _fit_verdict(result, path: Path, allow_oom: bool) -> None:  # noqa: ANN001
    """Does not fit: the memory verdict's line on stderr and exit 3 (unless --allow-oom)."""
    if result.fits_memory:
        return
    worst = max(result.memory, key=lambda m: m.memory.peak_bytes - m.memory.capacity_bytes)
    m = worst.memory
    line = (f"{path}: {worst.rank_class}: does not fit: peak {m.peak_bytes / GIB:.2f} GiB > "
            f"{m.capacity_bytes / GIB:.2f} GiB HBM (see `moesim memory`)")
    if allow_oom:
        print(f"moesim: warning: {line}; exit 0 (--allow-oom)", file=sys.stderr)
        return
    fail(line + "; --allow-oom to exit 0 anyway", EXIT_INFEASIBLE)
