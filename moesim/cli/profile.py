"""``moesim profile`` (time real kernels with torch) and ``moesim calibrate`` (attach, report)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.table import Table

from moesim.cli.common import console, err_console, print_json, user_errors
from moesim.compute.calibration import CalibrationTable, load_calibration, save_calibration
from moesim.compute.fit import accelerator_from_table, coverage, gemm_efficiency
from moesim.compute.shapes import scenario_shapes
from moesim.errors import SpecError
from moesim.specs.hardware import AcceleratorSpec
from moesim.specs.loader import load_scenario, load_topology


@user_errors
def profile(
    device: str = typer.Option("cuda", "--device", help="cuda or cpu."),
    dtype: str = typer.Option(None, "--dtype", help="bf16, fp8 or fp32 (default: bf16 on "
                              "cuda, fp32 on cpu)."),
    quick: bool = typer.Option(False, "--quick", help="A small grid (seconds on a CPU)."),
    out: Path = typer.Option(..., "--out", help="Calibration table to write (JSON)."),
    name: str = typer.Option(None, "--name", help="Table name (default: the file stem)."),
    no_collectives: bool = typer.Option(False, "--no-collectives",
                                        help="Skip the torch.distributed part."),
) -> None:
    """Time GEMMs, grouped GEMMs, attention, memory ops and collectives; write a table."""
    from moesim.profiling import run_profile

    dt = dtype or ("bf16" if device == "cuda" else "fp32")
    if dt not in ("bf16", "fp8", "fp32", "fp16"):
        raise SpecError(f"--dtype {dt!r} is not supported; valid: bf16, fp8, fp32")
    table = run_profile(device, dt, quick=quick, name=name or out.stem,
                        collectives=not no_collectives,
                        progress=lambda msg: err_console.print(f"[dim]{msg}[/dim]"))
    save_calibration(table, out)
    console.print(f"wrote {out}: {len(table.gemm)} GEMMs, {len(table.grouped_gemm)} grouped, "
                  f"{len(table.attention)} attention, {len(table.memory)} memory ops, "
                  f"{len(table.collectives)} collectives on {table.environment.device_name}")


def find_accelerator(name: str, table: CalibrationTable, topologies: Path) -> AcceleratorSpec:
    """The accelerator ``name``: one of the topologies' accelerators, or the table's own device.

    ``name`` may be an accelerator name from ``topologies/*.yaml`` (e.g. H100-SXM), or
    ``self`` / the table's device name for a topology-free accelerator built from the table.
    """
    own = accelerator_from_table(table)
    if name.lower() in ("self", "table", own.name.lower()):
        return own
    seen = []
    for f in sorted(topologies.glob("*.yaml")):
        try:
            acc = load_topology(f).accelerator
        except SpecError:
            continue
        if acc.name.lower() == name.lower():
            return acc
        seen.append(acc.name)
    valid = ", ".join(sorted(set(seen)) + ["self"])
    raise SpecError(f"--accelerator {name!r} is not an accelerator of {topologies}/*.yaml; "
                    f"valid: {valid}")


def _coverage_rows(table: CalibrationTable, scenarios: Path) -> tuple[list[dict[str, Any]],
                                                                        list[str]]:
    rows, skipped = [], []
    for f in sorted(scenarios.glob("*.yaml")):
        try:
            spec = load_scenario(f)
        except SpecError as exc:
            skipped.append(f"{f}: {exc}")
            continue
        for fam in coverage(table, scenario_shapes(spec)):
            rows.append({"scenario": spec.name, "family": fam.family, "needed": fam.needed,
                         "inside": fam.inside, "fraction": round(fam.fraction, 4),
                         "worst": fam.worst_label, "worst_factor": round(fam.worst_factor, 2)})
    return rows, skipped


def _efficiency(table: CalibrationTable, acc: AcceleratorSpec) -> dict[str, Any]:
    peak = acc.peak_flops(table.dtype)
    fit = gemm_efficiency(table, peak)
    flops = np.array([f for f, _ in fit.points])
    frac = np.array([y for _, y in fit.points])
    bins = []
    for lo in range(int(np.floor(np.log10(flops.min()))), int(np.ceil(np.log10(flops.max())))):
        sel = (flops >= 10.0**lo) & (flops < 10.0 ** (lo + 1))
        if sel.any():
            mid = float(np.sqrt(10.0**lo * 10.0 ** (lo + 1)))
            bins.append({"flops_decade": f"1e{lo}", "num": int(sel.sum()),
                         "measured_median": round(float(np.median(frac[sel])), 4),
                         "fitted": round(float(fit(mid)), 4)})
    memory = {}
    for p in table.memory:
        bw = p.bytes_moved / p.timing.value(table.statistic)
        memory[p.kind] = max(memory.get(p.kind, 0.0), bw / acc.hbm_bytes_per_s)
    return {"peak_tflops": peak / 1e12, "gemm_e_max": round(fit.e_max, 4),
            "gemm_half_flops": fit.half_flops, "gemm_bins": bins,
            "memory_best_fraction_of_hbm": {k: round(v, 4) for k, v in memory.items()}}


def _print_report(table: CalibrationTable, acc: AcceleratorSpec, rows: list[dict[str, Any]],
                  eff: dict[str, Any], skipped: list[str]) -> None:
    console.print(f"[bold]{table.name}[/bold] ({table.dtype}, {table.environment.device_name}) "
                  f"attached to {acc.name}: peak {eff['peak_tflops']:.4g} TFLOP/s")
    cov = Table(title="coverage of the shipped scenarios' shapes (inside = interpolated)")
    for col in ("scenario", "family", "inside / needed", "farthest outside"):
        cov.add_column(col)
    for r in rows:
        far = f"{r['worst']} x{r['worst_factor']:g}" if r["worst"] else "-"
        cov.add_row(r["scenario"], r["family"], f"{r['inside']} / {r['needed']}", far)
    console.print(cov)
    fit = Table(title=f"GEMM efficiency: e(F) = {eff['gemm_e_max']:.3f} F / (F + "
                      f"{eff['gemm_half_flops']:.3g})")
    for col in ("FLOPs per kernel", "kernels", "measured (median)", "fitted"):
        fit.add_column(col)
    for b in eff["gemm_bins"]:
        fit.add_row(b["flops_decade"], str(b["num"]), f"{b['measured_median']:.3f}",
                    f"{b['fitted']:.3f}")
    console.print(fit)
    mem = ", ".join(f"{k} {v:.2f}" for k, v in eff["memory_best_fraction_of_hbm"].items())
    console.print(f"memory ops, best fraction of {acc.hbm_gbyte_per_s:g} GB/s: {mem}")
    for s in skipped:
        console.print(f"[yellow]skipped[/yellow] {s}")


@user_errors
def calibrate(
    table_path: Path = typer.Argument(..., help="A calibration table from `moesim profile`."),
    accelerator: str = typer.Option(..., "--accelerator", help="Accelerator name from "
                                    "topologies/*.yaml, or 'self' for the table's own device."),
    topologies: Path = typer.Option(Path("topologies"), "--topologies"),
    scenarios: Path = typer.Option(Path("scenarios"), "--scenarios"),
    out: Path = typer.Option(None, "--out", help="Write the table attached to the accelerator."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Attach a profile to an accelerator; report coverage of scenarios and efficiency curves."""
    table = load_calibration(table_path)
    acc = find_accelerator(accelerator, table, topologies)
    attached = table.attached_to(acc.name)
    own = accelerator_from_table(table)
    if acc.name != own.name and table.environment.device_kind == "cpu":
        err_console.print(f"[yellow]warning[/yellow]: {table.name} was measured on a CPU; "
                          f"attached to {acc.name}, scenarios would use CPU kernel times")
    rows, skipped = _coverage_rows(attached, scenarios)
    eff = _efficiency(attached, acc)
    if out is not None:
        save_calibration(attached, out)
    if as_json:
        print_json({"table": table.name, "accelerator": acc.name, "dtype": table.dtype,
                    "coverage": rows, "efficiency": eff, "skipped": skipped,
                    "written": str(out) if out else None})
        return
    _print_report(attached, acc, rows, eff, skipped)
    if out is not None:
        console.print(f"wrote {out}; name it in a scenario as `calibration: {out}` "
                      "(relative to the scenario file)")


def register(app: typer.Typer) -> None:
    app.command("profile")(profile)
    app.command("calibrate")(calibrate)
