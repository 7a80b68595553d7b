"""``moesim routing SCENARIO``: per MoE layer, load per EP rank, drops and dispatch bytes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from moesim.cli.common import SET_HELP, attributed, console, print_json, user_errors
from moesim.constants import DEFAULT_DRAWS_PER_LAYER
from moesim.units import MB

if TYPE_CHECKING:
    from moesim.routing import StepRouting


def layer_rows(r: StepRouting) -> list[dict[str, Any]]:
    """One row per MoE layer; maxima are over EP ranks, averaged over micro-batches."""
    import numpy as np

    rows = []
    for i, layer in enumerate(r.moe_layers):
        recv = r.recv_tokens[i].astype(np.float64)  # [M, EP]
        routed = float(r.tokens_per_expert[i].sum())
        rows.append({
            "layer": layer,
            "max_tokens_per_rank": float(recv.max(axis=1).mean()),
            "mean_tokens_per_rank": float(recv.mean()),
            "max_over_mean": float((recv.max(axis=1) / np.maximum(recv.mean(axis=1), 1)).mean()),
            "drop_fraction": float(r.dropped_tokens[i].sum()) / routed if routed else 0.0,
            "intra_node_bytes_per_rank": float(r.intra_node_bytes[i].mean()),
            "inter_node_bytes_per_rank": float(r.inter_node_bytes[i].mean()),
            "max_inter_node_bytes_per_rank": float(r.inter_node_bytes[i].max(axis=1).mean()),
        })
    return rows


def routing(
    scenario: Path = typer.Argument(..., help="A scenario YAML file."),
    sets: list[str] = typer.Option([], "--set", help=SET_HELP),
    micro_batches: int | None = typer.Option(None, "--micro-batches", min=1,
                                             help="Micro-batches to draw (default: the step's)."),
    draws: int | None = typer.Option(None, "--draws", min=1,
                                     help=f"Independent draws per layer (default "
                                     f"{DEFAULT_DRAWS_PER_LAYER}, at most the micro-batches)."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable results."),
) -> None:
    """Per MoE layer: max/mean tokens per EP rank, drop fraction, dispatch bytes per rank."""
    from moesim.routing import draw_step_routing
    from moesim.specs.checks import scenario_work
    from moesim.specs.loader import load_scenario
    from moesim.specs.work import check_work

    with attributed(scenario):
        spec = load_scenario(scenario, sets)
        if micro_batches is not None or draws is not None:
            # the scenario passed the work cap with its own micro-batches and draws; these may not
            check_work(scenario_work(spec, micro_batches, draws),
                       knobs="lower --micro-batches or --draws")
        r = draw_step_routing(spec, num_micro_batches=micro_batches, num_draws_per_layer=draws)
    rows = layer_rows(r)
    summary = {"scenario": spec.name, "ep": r.ep, "tokens_per_source_rank": r.tokens_per_source_rank,
               "bytes_per_token_dispatch": r.bytes_per_token_dispatch,
               "bytes_per_token_combine": r.bytes_per_token_combine,
               "micro_batches": int(r.micro_batch_draw.size), "capacity": r.capacity,
               "drop_fraction": r.drop_fraction, "max_over_mean": r.max_over_mean(),
               "layers": rows}
    if as_json:
        print_json(summary)
        return
    console.print(f"[bold]{escape(spec.name)}[/bold]: EP{r.ep}, {r.tokens_per_source_rank} tokens per "
                  f"source rank, dispatch {r.bytes_per_token_dispatch:g} B/token, "
                  f"max/mean {summary['max_over_mean']:.3f}, drops {r.drop_fraction:.2%}")
    table = Table(title="routing per MoE layer (max over ranks, mean over micro-batches)")
    for col in ("layer", "max tok/rank", "mean tok/rank", "max/mean", "drop", "intra MB/rank",
                "inter MB/rank"):
        table.add_column(col, justify="right")
    for x in rows:
        table.add_row(str(x["layer"]), f"{x['max_tokens_per_rank']:.0f}",
                      f"{x['mean_tokens_per_rank']:.0f}", f"{x['max_over_mean']:.3f}",
                      f"{x['drop_fraction']:.2%}", f"{x['intra_node_bytes_per_rank'] / MB:.1f}",
                      f"{x['inter_node_bytes_per_rank'] / MB:.1f}")
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("routing")(user_errors(routing))
