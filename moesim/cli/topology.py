"""``moesim topology list|show``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from moesim.cli.common import console, print_json, user_errors
from moesim.specs.describe import as_gbyte_per_s, tier_summaries
from moesim.specs.loader import load_topology

topology_app = typer.Typer(help="Inspect the shipped topologies.", no_args_is_help=True)

DEFAULT_DIR = Path("topologies")


@topology_app.command("list")
@user_errors
def list_(
    folder: Path = typer.Option(DEFAULT_DIR, "--dir", help="Folder of topology YAML files."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List topologies with their accelerator and device count."""
    rows = []
    for f in sorted(folder.glob("*.yaml")):
        t = load_topology(f)
        rows.append({"file": str(f), "name": t.name, "accelerator": t.accelerator.name,
                     "devices": t.num_devices, "tiers": [x.kind for x in t.tiers]})
    if as_json:
        print_json(rows)
        return
    table = Table(title="topologies")
    for col in ("file", "accelerator", "devices", "tiers"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["file"], r["accelerator"], str(r["devices"]), " > ".join(r["tiers"]))
    console.print(table)


@topology_app.command("show")
@user_errors
def show(
    file: Path = typer.Argument(..., help="A topology YAML file."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Devices, tiers, per-device bandwidth per tier and bisection bandwidth."""
    t = load_topology(file)
    acc = t.accelerator
    tiers = tier_summaries(t)
    data = {
        "name": t.name, "devices": t.num_devices, "accelerator": acc.name,
        "bf16_dense_tflops": acc.bf16_dense_tflops, "fp8_dense_tflops": acc.fp8_dense_tflops,
        "hbm_capacity_gb": acc.hbm_capacity_gb, "hbm_gbyte_per_s": acc.hbm_gbyte_per_s,
        "tiers": [{"name": s.name, "kind": s.kind, "shape": s.shape,
                   "devices_spanned": s.devices_spanned,
                   "per_device_gbyte_per_s": as_gbyte_per_s(s.per_device_bytes_per_s),
                   "bisection_gbyte_per_s": as_gbyte_per_s(s.bisection_bytes_per_s),
                   "latency_us": s.latency_s * 1e6} for s in tiers],
    }
    if as_json:
        print_json(data)
        return
    console.print(f"[bold]{t.name}[/bold]: {t.num_devices} x {acc.name} "
                  f"({acc.bf16_dense_tflops:g} TFLOP/s BF16 dense, {acc.hbm_capacity_gb:g} GB HBM "
                  f"at {acc.hbm_gbyte_per_s:g} GB/s)")
    table = Table(title="tiers (bandwidth per direction)")
    for col in ("tier", "kind", "shape", "devices", "per-device GB/s", "bisection GB/s",
                "latency us"):
        table.add_column(col)
    for s in data["tiers"]:
        table.add_row(s["name"], s["kind"], s["shape"], str(s["devices_spanned"]),
                      f"{s['per_device_gbyte_per_s']:.1f}", f"{s['bisection_gbyte_per_s']:.1f}",
                      f"{s['latency_us']:g}")
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(topology_app, name="topology")
