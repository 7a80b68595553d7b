"""MoE figures: expert load, tokens per EP rank, dispatch traffic and link utilization.

Every builder reads a :class:`~moesim.results.schema.SimulationResult` only: ``*_spec``
returns plain figure data (:mod:`moesim.report.plain`), ``fig_*`` the plotly Figure of it.
Token counts are per micro-batch (as the result stores them); traffic is shown in MB (1e6
bytes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from plotly.colors import sequential

from moesim.report import plain
from moesim.report.plain import Figure, axis_title
from moesim.report.style import FIG_WIDTH_PX, kind_colors
from moesim.results.schema import SimulationResult
from moesim.units import GBYTE_PER_S, MB

if TYPE_CHECKING:
    import plotly.graph_objects as go

# How many of the busiest links of each tier the link figure shows.
LINKS_PER_TIER = 10


def expert_load_matrix(result: SimulationResult) -> tuple[list[int], np.ndarray]:
    """MoE layer indices and the (layers x experts) tokens-per-expert matrix."""
    layers = [r for r in result.routing.layers if r.tokens_per_expert]
    if not layers:
        return [], np.zeros((0, 0))
    width = max(len(r.tokens_per_expert) for r in layers)
    z = np.zeros((len(layers), width))
    for i, r in enumerate(layers):
        z[i, : len(r.tokens_per_expert)] = r.tokens_per_expert
    return [r.layer for r in layers], z


def expert_parallel_degree(result: SimulationResult, num_experts: int) -> int:
    """EP degree from the result's parallelism, else from the dispatch matrix, else 1."""
    for key in ("ep", "expert_parallel_degree"):  # the engine writes "ep"
        ep = result.parallelism.get(key)
        if isinstance(ep, int) and not isinstance(ep, bool) and ep >= 1:
            return ep
    n = len(result.routing.dispatch_traffic_bytes)
    if n >= 1 and num_experts % n == 0:
        return n
    return 1


def expert_load_spec(result: SimulationResult) -> Figure:
    """Heatmap of tokens routed to each expert (x) in each MoE layer (y), per micro-batch."""
    title = "expert load (tokens per expert per micro-batch, after top-k)"
    layers, z = expert_load_matrix(result)
    if not layers:
        return plain.empty(title, "the result has no routing (dense model or not recorded)",
                           width_px=FIG_WIDTH_PX)
    heat = {"colorbar": {"title": {"text": "tokens"}},
            "colorscale": plain.colorscale(sequential.Viridis),
            "hovertemplate": "layer %{y}, expert %{x}: %{z:.0f} tokens<extra></extra>",
            "x": np.arange(z.shape[1]), "y": [str(x) for x in layers], "z": z,
            "type": "heatmap"}
    peak = float(z.max()) / max(float(z.mean()), 1e-30)
    return {"data": [heat], "layout": plain.layout(
        f"{title}; hottest expert {peak:.2f}x the mean",
        max(360, min(900, 140 + 10 * len(layers))), width_px=FIG_WIDTH_PX,
        xaxis=axis_title("expert index"), yaxis=axis_title("MoE layer index", type="category"))}


def fig_expert_load(result: SimulationResult) -> go.Figure:
    """:func:`expert_load_spec` as a plotly Figure."""
    return plain.to_figure(expert_load_spec(result))


def tokens_per_ep_rank(result: SimulationResult) -> np.ndarray:
    """(layers x EP ranks) tokens each EP rank receives: sums of contiguous expert blocks."""
    _, z = expert_load_matrix(result)
    if z.size == 0:
        return z
    ep = expert_parallel_degree(result, z.shape[1])
    if z.shape[1] % ep:
        ep = 1
    return z.reshape(z.shape[0], ep, z.shape[1] // ep).sum(axis=2)


def tokens_per_rank_spec(result: SimulationResult) -> Figure:
    """Tokens per EP rank (per micro-batch): mean over MoE layers and the worst layer."""
    title = "tokens per EP rank per micro-batch"
    per_rank = tokens_per_ep_rank(result)
    if per_rank.size == 0:
        return plain.empty(title, "the result has no routing (dense model or not recorded)",
                           width_px=FIG_WIDTH_PX)
    ranks = np.arange(per_rank.shape[1])
    worst_layer = int(np.argmax(per_rank.max(axis=1)))
    layer_ids, _ = expert_load_matrix(result)
    data = [{"name": "mean over MoE layers", "x": ranks, "y": per_rank.mean(axis=0),
             "type": "bar"},
            {"mode": "markers", "name": f"most imbalanced layer ({layer_ids[worst_layer]})",
             "x": ranks, "y": per_rank[worst_layer], "type": "scatter"}]
    # a dashed line across the plot at the mean, labelled at its right end
    mean = float(per_rank.mean())
    line = {"line": {"color": "gray", "dash": "dash"}, "type": "line", "x0": 0, "x1": 1,
            "xref": "x domain", "y0": mean, "y1": mean, "yref": "y"}
    label = {"showarrow": False, "text": "balanced", "x": 1, "xanchor": "right",
             "xref": "x domain", "y": mean, "yanchor": "bottom", "yref": "y"}
    ratio = float(per_rank.max()) / max(mean, 1e-30)
    return {"data": data, "layout": plain.layout(
        f"{title}; busiest rank {ratio:.2f}x the mean", 420, width_px=FIG_WIDTH_PX,
        shapes=[line], annotations=[label], xaxis=axis_title("EP rank"),
        yaxis=axis_title("tokens per EP rank (tokens)"))}


def fig_tokens_per_rank(result: SimulationResult) -> go.Figure:
    """:func:`tokens_per_rank_spec` as a plotly Figure."""
    return plain.to_figure(tokens_per_rank_spec(result))


def dispatch_traffic_spec(result: SimulationResult) -> Figure:
    """Heatmap of dispatch all-to-all bytes (MB) from each source to each destination EP rank."""
    title = "EP dispatch traffic (one layer, one micro-batch)"
    m = np.asarray(result.routing.dispatch_traffic_bytes, dtype=float)
    if m.ndim != 2 or m.size == 0:
        return plain.empty(title, "the result has no dispatch traffic matrix",
                           width_px=FIG_WIDTH_PX)
    heat = {"colorbar": {"title": {"text": "MB"}},
            "colorscale": plain.colorscale(sequential.Blues),
            "hovertemplate": "rank %{y} -> rank %{x}: %{z:.2f} MB<extra></extra>",
            "z": m / MB, "type": "heatmap"}
    side = min(900, max(420, 8 * m.shape[0] + 160))
    return {"data": [heat], "layout": plain.layout(
        f"{title}: {m.sum() / MB:,.1f} MB in total", side, width_px=side + 200,
        xaxis=axis_title("destination EP rank"),
        yaxis=axis_title("source EP rank", autorange="reversed"))}


def fig_dispatch_traffic(result: SimulationResult) -> go.Figure:
    """:func:`dispatch_traffic_spec` as a plotly Figure."""
    return plain.to_figure(dispatch_traffic_spec(result))


def busiest_links(result: SimulationResult, per_tier: int = LINKS_PER_TIER) -> list:
    """The ``per_tier`` most utilized links of each tier, tiers in first-seen order."""
    tiers: dict[str, list] = {}
    for link in result.links:
        tiers.setdefault(link.tier, []).append(link)
    out = []
    for links in tiers.values():
        out += sorted(links, key=lambda x: (-x.utilization, x.link))[:per_tier]
    return out


def links_spec(result: SimulationResult) -> Figure:
    """Utilization (% of the step each link is busy) of the busiest links of each fabric
    tier, on an axis scaled to the data; each bar says its mean rate against its capacity."""
    title = f"link utilization: the {LINKS_PER_TIER} busiest links of each tier"
    links = busiest_links(result)
    if not links:
        return plain.empty(title, "the result has no link usage", width_px=FIG_WIDTH_PX)
    colors = kind_colors([x.tier for x in links])
    step = max(result.step_time_s, 1e-30)
    data = []
    for tier in dict.fromkeys(x.tier for x in links):
        sel = [x for x in links if x.tier == tier]
        data.append({
            "cliponaxis": False,
            "customdata": [[x.bytes / MB, x.capacity_bytes_per_s / GBYTE_PER_S] for x in sel],
            "hovertemplate": ("%{y}: %{x:.2f} % busy, %{customdata[0]:,.1f} MB per step "
                              "at %{customdata[1]:,.0f} GB/s<extra></extra>"),
            "marker": {"color": colors[tier]}, "name": tier, "orientation": "h",
            "text": [f"{x.utilization * 100:.1f}% · {x.bytes / step / GBYTE_PER_S:,.1f} of "
                     f"{x.capacity_bytes_per_s / GBYTE_PER_S:,.0f} GB/s" for x in sel],
            "textposition": "outside", "x": [x.utilization * 100 for x in sel],
            "y": [f"{x.tier}: {x.link}" for x in sel], "type": "bar"})
    peak = max(x.utilization * 100 for x in links)
    # Room for the labels; never past 100 % unless a link is (the axis fits the data).
    top = max(peak * 1.45, 0.5) if peak < 69 else max(100.0, peak * 1.05)
    return {"data": data, "layout": plain.layout(
        f"{title}; busiest {peak:.1f}% of the step", max(320, 130 + 22 * len(links)),
        width_px=FIG_WIDTH_PX, margin={"l": 90, "r": 60, "t": 70, "b": 60},
        xaxis=axis_title("busy time (% of step time); label: mean rate of capacity (GB/s)",
                         range=[0, top]),
        yaxis=axis_title("link (tier: endpoints)", type="category", autorange="reversed"))}


def fig_links(result: SimulationResult) -> go.Figure:
    """:func:`links_spec` as a plotly Figure."""
    return plain.to_figure(links_spec(result))
