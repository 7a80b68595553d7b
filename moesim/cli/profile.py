"""``moesim profile`` (time real kernels with torch) and ``moesim calibrate`` (tables: import
measured data, attach a table to an accelerator, report its coverage)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from moesim import shipped
from moesim.cli.common import console, err_console, print_json, progress, user_errors
from moesim.errors import SpecError
from moesim.units import eng

if TYPE_CHECKING:
    import numpy as np

    from moesim.compute.calibration import CalibrationTable
    from moesim.specs.hardware import AcceleratorSpec


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
    from moesim.compute.calibration import save_calibration
    from moesim.profiling import run_profile

    dt = dtype or ("bf16" if device == "cuda" else "fp32")
    if dt not in ("bf16", "fp8", "fp32", "fp16"):
        raise SpecError(f"--dtype {dt!r} is not supported; valid: bf16, fp8, fp32")
    with progress(f"profile {device}") as update:
        table = run_profile(device, dt, quick=quick, name=name or out.stem,
                            collectives=not no_collectives,
                            progress=lambda msg: update(description=escape(msg[:70])))
    save_calibration(table, out)
    console.print(f"wrote {out}: {len(table.gemm)} GEMMs, {len(table.grouped_gemm)} grouped, "
                  f"{len(table.attention)} attention, {len(table.memory)} memory ops, "
                  f"{len(table.collectives)} collectives on {table.environment.device_name}")


def find_accelerator(name: str, table: CalibrationTable, topologies: Path) -> AcceleratorSpec:
    """The accelerator ``name``: one of the topologies' accelerators, or the table's own device.

    ``name`` may be an accelerator name from ``topologies/*.yaml`` (e.g. H100-SXM), or
    ``self`` / the table's device name for a topology-free accelerator built from the table.
    """
    from moesim.compute.fit import accelerator_from_table
    from moesim.specs.loader import load_topology

    if table.environment is not None:
        own = accelerator_from_table(table)
        if name.lower() in ("self", "table", own.name.lower()):
            return own
    elif name.lower() in ("self", "table"):
        raise SpecError(f"--accelerator {name}: {table.name} was converted, not measured here, "
                        "so it has no device of its own; name an accelerator of topologies/")
    seen = []
    for f in sorted(topologies.glob("*.yaml")):
        try:
            acc = load_topology(f).accelerator
        except SpecError:
            continue
        if acc.name.lower() == name.lower():
            return acc
        seen.append(acc.name)
    valid = ", ".join(sorted(set(seen)) + (["self"] if table.environment else []))
    raise SpecError(f"--accelerator {name!r} is not an accelerator of {topologies}/*.yaml; "
                    f"valid: {valid}")


def _scenario_files(scenarios: Path, picked: list[Path]) -> list[Path]:
    return list(picked) if picked else sorted(scenarios.glob("*.yaml"))


def _coverage_rows(table: CalibrationTable, acc: AcceleratorSpec, files: list[Path]
                   ) -> tuple[list[dict[str, Any]], list[str]]:
    from moesim.compute.coverage import coverage_dtype, scenario_coverage
    from moesim.specs.loader import load_scenario

    rows, skipped = [], []
    for f in files:
        try:
            spec = load_scenario(f)
            families = scenario_coverage(table, spec, acc)
        except SpecError as exc:
            skipped.append(f"{f}: {exc}")
            continue
        for fam in families:
            rows.append({"scenario": spec.name, "dtype": coverage_dtype(table, spec),
                         "workload_dtype": spec.workload.dtype, **fam.as_dict()})
    return rows, skipped


def _gemm_points(table: CalibrationTable, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """(FLOPs, seconds) of every measured GEMM of ``dtype``: v1 points or a v2 grid."""
    import numpy as np

    if table.gemm and table.dtype == dtype:
        return (np.array([p.flops for p in table.gemm]),
                np.array([p.timing.value(table.statistic) for p in table.gemm]))
    grid = table.gemm_grid(dtype)
    if grid is None:
        return np.array([]), np.array([])
    m, n, k = np.meshgrid(grid.m, grid.n, grid.k, indexing="ij")
    t = grid.times_s()
    ok = np.isfinite(t)
    return (2.0 * m * n * k)[ok].astype(np.float64), t[ok]


def _efficiency(table: CalibrationTable, acc: AcceleratorSpec, dtype: str) -> dict[str, Any]:
    import numpy as np

    from moesim.compute.fit import fit_efficiency

    peak = acc.peak_flops("fp8" if dtype in ("fp8_block", "nvfp4") else dtype)
    flops, times = _gemm_points(table, dtype)
    out: dict[str, Any] = {"dtype": dtype, "peak_tflops": peak / 1e12, "gemm_bins": []}
    if flops.size:
        frac = flops / times / peak
        fit = fit_efficiency(flops, frac)
        out.update(gemm_e_max=round(fit.e_max, 4), gemm_half_flops=fit.half_flops,
                   gemm_best=round(float(frac.max()), 4))
        for lo in range(int(np.floor(np.log10(flops.min()))),
                        int(np.ceil(np.log10(flops.max())))):
            sel = (flops >= 10.0**lo) & (flops < 10.0 ** (lo + 1))
            if sel.any():
                mid = float(np.sqrt(10.0**lo * 10.0 ** (lo + 1)))
                out["gemm_bins"].append({"flops_decade": f"1e{lo}", "num": int(sel.sum()),
                                         "measured_median": round(float(np.median(frac[sel])), 4),
                                         "fitted": round(float(fit(mid)), 4)})
    memory: dict[str, float] = {}
    for p in table.memory:
        bw = p.bytes_moved / p.timing.value(table.statistic)
        memory[p.kind] = max(memory.get(p.kind, 0.0), bw / acc.hbm_bytes_per_s)
    for c in table.memory_curves:  # at the largest size: smaller ones run from the L2 cache
        bw = c.size_bytes[-1] / (float(c.time_us[-1] or 0.0) * 1e-6)
        memory[c.kind] = bw / acc.hbm_bytes_per_s
    out["memory_best_fraction_of_hbm"] = {k: round(v, 4) for k, v in sorted(memory.items())}
    return out


def _print_report(table: CalibrationTable, acc: AcceleratorSpec, rows: list[dict[str, Any]],
                  eff: dict[str, Any], skipped: list[str]) -> None:
    console.print(f"[bold]{table.name}[/bold] ({', '.join(table.gemm_dtypes())}; "
                  f"{table.device_name}) attached to {acc.name}")
    cov = Table(title="coverage of the scenarios' kernel shapes, by where the time comes from")
    for col in ("scenario", "family", "measured", "derived", "roofline", "outside the table"):
        cov.add_column(col)
    for r in rows:
        outside = ", ".join(r["outside"][:6]) + (" ..." if len(r["outside"]) > 6 else "")
        cov.add_row(r["scenario"], r["family"], str(r["measured"]), str(r["derived"]),
                    str(r["roofline"]), outside or "-")
    console.print(cov)
    if eff["gemm_bins"]:
        fit = Table(title=f"{eff['dtype']} GEMM efficiency vs {eff['peak_tflops']:.4g} TFLOP/s: "
                          f"e(F) = {eff['gemm_e_max']:.3f} F / (F + {eng(eff['gemm_half_flops'], 'FLOP')})")
        for col in ("FLOPs per kernel", "kernels", "measured (median)", "fitted"):
            fit.add_column(col)
        for b in eff["gemm_bins"]:
            fit.add_row(b["flops_decade"], str(b["num"]), f"{b['measured_median']:.3f}",
                        f"{b['fitted']:.3f}")
        console.print(fit)
    mem = ", ".join(f"{k} {v:.2f}" for k, v in eff["memory_best_fraction_of_hbm"].items())
    if mem:
        console.print(f"memory ops, fraction of {acc.hbm_gbyte_per_s:g} GB/s (profiled: the "
                      f"best op; measured curves: the largest size): {mem}")
    for s in skipped:
        console.print(f"[yellow]skipped[/yellow] {s}")


calibrate_app = typer.Typer(help="Calibration tables: import measured data, report coverage.",
                            no_args_is_help=True)


@calibrate_app.command("coverage")
@user_errors
def coverage(
    table_path: Path = typer.Argument(..., help="A calibration table (profile or import)."),
    accelerator: str = typer.Option(..., "--accelerator", help="Accelerator name from "
                                    "topologies/*.yaml, or 'self' for a profiled table's device."),
    topologies: Path = typer.Option(shipped.shipped_dir("topologies"), "--topologies",
                                    show_default="the shipped topologies"),
    scenarios: Path = typer.Option(shipped.shipped_dir("scenarios"), "--scenarios",
                                   show_default="the shipped scenarios",
                                   help="Folder of scenarios (its *.yaml) to report on."),
    scenario: list[Path] = typer.Option([], "--scenario", help="Report on this scenario "
                                        "only (repeatable; default: the --scenarios folder)."),
    dtype: str = typer.Option(None, "--dtype", help="GEMM dtype of the efficiency report "
                              "(default: the table's v1 dtype, else bf16)."),
    out: Path = typer.Option(None, "--out", help="Write the table attached to the accelerator."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Attach a table to an accelerator; report per op family how many of the scenarios'
    shapes are measured, derived or roofline, which fell outside, and GEMM efficiency."""
    from moesim.compute.calibration import load_calibration, save_calibration

    table = load_calibration(table_path)
    acc = find_accelerator(accelerator, table, topologies)
    attached = table.attached_to(acc.name)
    env = table.environment
    if env is not None and env.device_kind == "cpu" and acc.name != env.device_name:
        err_console.print(f"[yellow]warning[/yellow]: {table.name} was measured on a CPU; "
                          f"attached to {acc.name}, scenarios would use CPU kernel times")
    rows, skipped = _coverage_rows(attached, acc, _scenario_files(scenarios, scenario))
    eff = _efficiency(attached, acc, dtype or table.dtype or "bf16")
    if out is not None:
        save_calibration(attached, out)
    if as_json:
        print_json({"table": table.name, "accelerator": acc.name, "dtype": table.dtype,
                    "gemm_dtypes": list(table.gemm_dtypes()), "coverage": rows,
                    "efficiency": eff, "skipped": skipped,
                    "written": str(out) if out else None})
        return
    _print_report(attached, acc, rows, eff, skipped)
    if out is not None:
        console.print(f"wrote {out}; name it in a scenario as `calibration: {out}` "
                      "(relative to the scenario file)")


@calibrate_app.command("import-aiconfigurator")
@user_errors
def import_aiconfigurator(
    system: str = typer.Option(..., "--system", help="aiconfigurator-core system, e.g. "
                               "h100_sxm, b200_sxm, gb200."),
    out: Path = typer.Option(None, "--out", help="Table to write (default: "
                             "calibration/aic-<system>.json)."),
    accelerator: str = typer.Option(None, "--accelerator", help="Accelerator name to attach "
                                    "to (default: the system's, e.g. H100-SXM)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Convert aiconfigurator-core's measured tables of one system into a moesim table
    (needs the `aiconfigurator` extra)."""
    from moesim.compute.aiconfigurator import default_out, import_system
    from moesim.compute.calibration import save_calibration

    table = import_system(system, accelerator=accelerator)
    path = out or default_out(system)
    save_calibration(table, path)
    prov = table.provenance
    assert prov is not None
    summary = {"written": str(path), "bytes": path.stat().st_size, "accelerator":
               table.accelerator, "device": prov.device_name, "gemm_dtypes":
               list(table.gemm_dtypes()),
               "families": [f"{f.family}: {f.framework} {f.framework_version} "
                            f"{Path(f.path).stem} ({f.num_rows_kept} of {f.num_rows} rows)"
                            for f in prov.files]}
    if as_json:
        print_json(summary)
        return
    target = table.accelerator or "no accelerator (attach with --accelerator NAME)"
    console.print(f"wrote {path} ({summary['bytes'] / 1e6:.2f} MB) for {target}: "
                  f"{prov.device_name}, GEMMs in {', '.join(summary['gemm_dtypes'])}")
    for line in summary["families"]:
        console.print(f"  {line}")


def register(app: typer.Typer) -> None:
    app.command("profile")(profile)
    app.add_typer(calibrate_app, name="calibrate")
