"""``moesim collective TOPOLOGY --op OP --ranks N --size BYTES``: time, algbw, busbw."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from moesim.cli.common import choices, console, print_json, user_errors, value_of
from moesim.constants import OPS, PLACEMENTS
from moesim.errors import SpecError
from moesim.units import GB, KIB, US, ibytes, parse_size

SWEEP_MIN, SWEEP_MAX = KIB, 16 * 1024**3  # 1 KiB .. 16 GiB, doubling, as nccl-tests -f 2
OpChoice = choices("OpChoice", tuple(OPS))
PlacementChoice = choices("PlacementChoice", tuple(PLACEMENTS))
MAX_SIZE = 1024**5  # 1 PiB per rank: 5,000x an H100's HBM; larger is no collective anyone runs


def _row(cluster, op: str, ranks: list[int], size: float, algorithm: str | None) -> dict:  # type: ignore[no-untyped-def]
    from moesim.network import collective_time

    groups = [[ranks[0], ranks[-1]]] if op == "send" else [ranks]
    r = collective_time(cluster, op, groups, size, algorithm=algorithm)
    return {"size_bytes": size, "time_us": r.time_s / US,
            "algbw_gbyte_per_s": r.algbw_bytes_per_s / GB,
            "busbw_gbyte_per_s": r.busbw_bytes_per_s / GB, "algorithm": r.algorithm}


@user_errors
def collective(
    topology: Path = typer.Argument(..., help="A topology YAML file."),
    op: OpChoice = typer.Option(..., "--op", help="The collective."),  # type: ignore[valid-type]
    ranks: int = typer.Option(..., "--ranks", min=1, help="Ranks in the group."),
    size: str = typer.Option("1GiB", "--size", help="Bytes per rank as nccl-tests counts them: "
                             "KiB MiB GiB are 2^10 2^20 2^30, k M G (kB MB GB) 10^3 10^6 10^9."),
    algorithm: str | None = typer.Option(None, "--algorithm", help="Force an algorithm."),
    placement: PlacementChoice = typer.Option(  # type: ignore[valid-type]
        "packed", "--placement", help="Rank placement: packed fills a scale-up domain first."),
    sweep: bool = typer.Option(False, "--sweep", help="Table over 1 KiB .. 16 GiB."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable results."),
) -> None:
    """Time, algorithm bandwidth and bus bandwidth of one collective (nccl-tests definitions)."""
    from moesim.cluster import build_cluster, place_ranks
    from moesim.specs.loader import load_topology

    op, placement = value_of(op), value_of(placement)
    topo = load_topology(topology)
    cluster = build_cluster(topo)
    devices = place_ranks(ranks, cluster.devices_per_domain, cluster.num_devices, placement)
    try:
        nbytes = parse_size(size)
    except (ValueError, OverflowError):
        nbytes = float("nan")
    if not (1 <= nbytes <= MAX_SIZE):  # also NaN and inf
        raise SpecError(f"moesim collective: --size {size[:40]!r} is not a size from 1 byte to "
                        "1 PiB; e.g. 1GiB, 64MiB, 4096; see `moesim collective --help`",
                        field="size")
    sizes = [SWEEP_MIN * 2**i for i in range(25)] if sweep else [nbytes]
    rows = [_row(cluster, op, devices, s, algorithm) for s in sizes if s <= SWEEP_MAX or not sweep]
    if as_json:
        print_json({"topology": topo.name, "op": op, "ranks": ranks, "placement": placement,
                    "results": rows})
        return
    table = Table(title=escape(f"{op} on {ranks} x {topo.accelerator.name} ({topo.name})"))
    for col in ("size", "time (us)", "algbw (GB/s)", "busbw (GB/s)", "algorithm"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(ibytes(r["size_bytes"]), f"{r['time_us']:,.1f}",
                      f"{r['algbw_gbyte_per_s']:.2f}", f"{r['busbw_gbyte_per_s']:.2f}",
                      r["algorithm"])
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("collective")(collective)
