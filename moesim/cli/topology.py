"""``moesim topology list|show``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from moesim import shipped
from moesim.cli.common import console, print_json, user_errors
from moesim.errors import SpecError
from moesim.units import GB, US, eng

if TYPE_CHECKING:
    from moesim.specs.hardware import TopologySpec

topology_app = typer.Typer(help="Inspect the shipped topologies.", no_args_is_help=True)

@topology_app.command("list")
@user_errors
def list_(
    folder: Path = typer.Option(None, "--dir", help="Folder of topology YAML files.",
                                show_default="the shipped topologies"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List topologies with the name `show`, `collective` and a scenario's `topology:` take,
    their accelerator and device count."""
    from moesim.specs.loader import load_topology

    folder = folder if folder is not None else shipped.shipped_dir("topologies")
    if not folder.is_dir():
        raise SpecError(f"--dir {str(folder)[:200]!r}: not a folder of topology YAML files",
                        field="dir")
    rows = []
    for f in sorted(folder.glob("*.yaml")):
        t = load_topology(f)
        rows.append({"name": f.stem, "file": str(f), "accelerator": t.accelerator.name,
                     "devices": t.num_devices, "tiers": [x.kind for x in t.tiers]})
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"{len(rows)} topologies in {escape(str(folder))}")
    for col in ("name", "accelerator", "devices", "tiers"):
        table.add_column(col, justify="right" if col == "devices" else "left", no_wrap=True)
    for r in rows:
        table.add_row(escape(r["name"]), escape(r["accelerator"]), f"{r['devices']:,}",
                      " > ".join(r["tiers"]))
    console.print(table)


@topology_app.command("show")
@user_errors
def show(
    file: Path = typer.Argument(..., help="A topology YAML file or a shipped topology's name "
                                "(`moesim topology list`)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Devices, tiers, per-device bandwidth per tier and bisection bandwidth (per direction)."""
    from moesim.specs.loader import load_topology

    t = load_topology(file)
    data = _show_data(t)
    if as_json:
        print_json(data)
        return
    acc = t.accelerator
    console.print(f"[bold]{escape(t.name)}[/bold]: {t.num_devices} x {escape(acc.name)} "
                  f"({acc.bf16_dense_tflops:g} TFLOP/s BF16 dense, {acc.hbm_capacity_gib:g} GiB HBM "
                  f"at {acc.hbm_gbyte_per_s:g} GB/s)", soft_wrap=True)
    for i, s in enumerate(data["tiers"]):
        console.print(f"  tier {i} {escape(s['name'])} ({s['kind']}): {escape(s['shape'])}; "
                      f"{eng(s['per_device_gbyte_per_s'] * GB, 'B/s')} per device per direction; "
                      f"bisection {eng(s['bisection_gbyte_per_s'] * GB, 'B/s')} per direction; "
                      f"spans {s['devices_spanned']:,} devices; latency "
                      f"{eng(s['latency_us'] * US, 's')}",
                      soft_wrap=True, highlight=False)


def _show_data(t: TopologySpec) -> dict[str, Any]:
    from moesim.specs.describe import as_gbyte_per_s, tier_summaries
    from moesim.specs.hardware import FatTreeSpec, TorusSpec

    acc = t.accelerator
    tiers = []
    for spec, s in zip(t.tiers, tier_summaries(t), strict=True):
        row: dict[str, Any] = {
            "name": s.name, "kind": s.kind, "shape": s.shape, "devices_spanned": s.devices_spanned,
            "per_device_gbyte_per_s": as_gbyte_per_s(s.per_device_bytes_per_s),
            "bisection_gbyte_per_s": as_gbyte_per_s(s.bisection_bytes_per_s),
            "latency_us": s.latency_s / US}
        if isinstance(spec, TorusSpec):
            row |= {"dims": list(spec.dims), "num_axes": len(spec.dims),
                    "wraparound": list(spec.wraps),
                    "cube_dims": list(spec.cube_dims) if spec.cube_dims else None}
        if isinstance(spec, FatTreeSpec):
            row |= {"nics_per_domain": spec.nics_per_domain, "nic_gbit_per_s": spec.nic_gbit_per_s}
        tiers.append(row)
    return {"name": t.name, "devices": t.num_devices, "accelerator": acc.name,
            "bf16_dense_tflops": acc.bf16_dense_tflops, "fp8_dense_tflops": acc.fp8_dense_tflops,
            "hbm_capacity_gib": acc.hbm_capacity_gib, "hbm_gbyte_per_s": acc.hbm_gbyte_per_s,
            "tiers": tiers}


def register(app: typer.Typer) -> None:
    app.add_typer(topology_app, name="topology")
