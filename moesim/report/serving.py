"""The report of a serving run: headline, latency CDFs, timeline, iteration breakdown, memory;
result.json, summary.csv, requests.csv, iterations.csv and report.html (offline plotly).

Reads :class:`~moesim.results.serving.ServingResult` only; never simulates. Displayed times
are milliseconds or seconds as labelled, memory GiB.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from rich.console import Console
from rich.table import Table

from moesim.io import write_text_atomic
from moesim.report.assets import PAGE_STYLE, PLOTLY_JS, figure_div, head, write_plotly_js
from moesim.report.style import base_layout, empty_figure, kind_colors
from moesim.results.serving import LatencySummary, ServingResult
from moesim.units import GIB, MS

FILE_NAMES = {"result": "result.json", "summary": "summary.csv", "requests": "requests.csv",
              "iterations": "iterations.csv", "html": "report.html", "plotly": PLOTLY_JS}
CDF_POINTS = 400  # points per CDF curve (quantiles), whatever the request count


def headline_rows(r: ServingResult) -> list[tuple[str, str, float | int | str, str]]:
    """(metric, label, SI value, display) rows of the headline, in display order."""
    rows: list[tuple[str, str, float | int | str, str]] = [
        ("num_requests", "requests", r.num_requests, f"{r.num_requests:,} ({r.completed:,} done)"),
        ("duration_s", "simulated span", r.duration_s, f"{r.duration_s:,.2f} s"),
    ]
    for name, label in (("ttft", "TTFT"), ("tpot", "TPOT"), ("e2e", "E2E latency")):
        s: LatencySummary = getattr(r, name)
        if s.count:
            rows.append((f"{name}.p50_s", f"{label} mean / p50 / p90 / p99", s.p50_s,
                         " / ".join(f"{x / MS:,.1f}" for x in (s.mean_s, s.p50_s, s.p90_s,
                                                                  s.p99_s)) + " ms"))
    rows += [
        ("input_tokens_per_s_per_node", "input tokens/s per node (all nodes)",
         r.input_tokens_per_s_per_node, f"{r.input_tokens_per_s_per_node:,.0f}"),
        ("output_tokens_per_s_per_node", "output tokens/s per node (all nodes)",
         r.output_tokens_per_s_per_node, f"{r.output_tokens_per_s_per_node:,.0f}"),
    ]
    for role in r.roles:
        if role.prefill_tokens:
            rows.append((f"{role.role}.input_tokens_per_s_per_node",
                         f"{role.role}: input tokens/s per node", role.input_tokens_per_s_per_node,
                         f"{role.input_tokens_per_s_per_node:,.0f} ({_nodes(role.num_nodes)}, "
                         f"{role.utilization * 100:.0f}% busy)"))
        if role.decode_tokens:
            rows.append((f"{role.role}.output_tokens_per_s_per_node",
                         f"{role.role}: output tokens/s per node",
                         role.output_tokens_per_s_per_node,
                         f"{role.output_tokens_per_s_per_node:,.0f} ({_nodes(role.num_nodes)}, "
                         f"batch {role.mean_decode_batch_per_rank:,.1f} per rank)"))
    if r.goodput_requests_per_s is not None and r.slo_attainment is not None:
        rows.append(("goodput_requests_per_s", "goodput (both SLOs met)",
                     r.goodput_requests_per_s,
                     f"{r.goodput_requests_per_s:,.2f} req/s ({r.slo_attainment * 100:.1f}% "
                     f"of requests; TTFT <= {r.slo_ttft_s / MS:g} ms, TPOT <= "  # type: ignore[operator]
                     f"{r.slo_tpot_s / MS:g} ms)"))  # type: ignore[operator]
    rows.append(("mean_in_system", "requests in the system (time mean)", r.mean_in_system,
                 f"{r.mean_in_system:,.1f}"))
    return rows


def _nodes(n: float) -> str:
    return f"{n:g} node" + ("" if n == 1 else "s")


def fig_serving_headline(r: ServingResult) -> go.Figure:
    rows = headline_rows(r)
    fig = go.Figure(go.Table(
        header={"values": ["metric", "value"], "align": "left"},
        cells={"values": [[x[1] for x in rows], [x[3] for x in rows]], "align": "left"}))
    return base_layout(fig, f"{r.scenario}: {r.deployment}", height_px=90 + 28 * len(rows))


def _cdf(values: list[float]) -> tuple[np.ndarray, np.ndarray]:
    v = np.sort(np.asarray(values, dtype=np.float64))
    v = v[np.isfinite(v)]
    if v.size == 0:
        return v, v
    q = np.linspace(0.0, 1.0, min(CDF_POINTS, v.size))
    return np.quantile(v, q), q


def fig_latency_cdf(r: ServingResult) -> go.Figure:
    """CDFs of TTFT, TPOT and E2E latency over requests, with the SLOs as lines."""
    req = r.requests
    if not req.arrival_s:
        return empty_figure("Latency CDFs", "no requests")
    a, f, first = (np.asarray(x) for x in (req.arrival_s, req.finish_s, req.first_token_s))
    out = np.asarray(req.output_tokens, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(out > 1, (f - first) / (out - 1), np.nan)
    series = [("TTFT", first - a, r.slo_ttft_s), ("TPOT", tpot, r.slo_tpot_s),
              ("E2E latency", f - a, None)]
    fig = make_subplots(rows=1, cols=3, subplot_titles=[s[0] for s in series])
    for col, (name, values, slo) in enumerate(series, start=1):
        x, q = _cdf(list(values))
        if x.size == 0 or (name == "TPOT" and r.isolate == "prefill"):
            continue
        fig.add_trace(go.Scatter(x=x / MS, y=q, mode="lines", name=name), row=1, col=col)
        if slo is not None:
            fig.add_vline(x=slo / MS, line_dash="dash", line_color="#b00", row=1, col=col)  # type: ignore[arg-type]
        fig.update_xaxes(title_text="ms", row=1, col=col)
    fig.update_yaxes(title_text="fraction of requests", row=1, col=1, range=[0, 1])
    return base_layout(fig, "Latency CDFs (dashed: SLO)", height_px=420)


def fig_serving_timeline(r: ServingResult) -> go.Figure:
    """Iterations of each instance over time (bars coloured by prefill share) and the
    requests in the system."""
    if not r.timeline:
        return empty_figure("Timeline", "no iterations")
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.65, 0.35],
                        vertical_spacing=0.08)
    lanes = sorted({(it.role, it.instance) for it in r.timeline})
    lane_of = {k: i for i, k in enumerate(lanes)}
    x, base, y, color, text = [], [], [], [], []
    for it in r.timeline:
        x.append(it.duration_s)
        base.append(it.start_s)
        y.append(f"{it.role} {it.instance}")
        total = it.prefill_tokens + it.decode_tokens
        color.append(it.prefill_tokens / total if total else 0.0)
        text.append(f"{it.prefill_tokens} prefill + {it.decode_tokens} decode tokens, "
                    f"{it.duration_s / MS:.1f} ms")
    fig.add_trace(go.Bar(x=x, base=base, y=y, orientation="h", hovertext=text,
                         marker={"color": color, "colorscale": "Bluered", "cmin": 0, "cmax": 1,
                                 "colorbar": {"title": "prefill share", "len": 0.6, "y": 0.75}},
                         name="iterations", showlegend=False), row=1, col=1)
    req = r.requests
    if req.arrival_s:
        t = np.concatenate([req.arrival_s, req.finish_s])
        step = np.concatenate([np.ones(len(req.arrival_s)), -np.ones(len(req.finish_s))])
        order = np.argsort(t, kind="stable")
        fig.add_trace(go.Scatter(x=t[order], y=np.cumsum(step[order]), mode="lines",
                                 line_shape="hv", name="in system"), row=2, col=1)
    fig.update_xaxes(title_text="simulated time (s)", row=2, col=1)
    fig.update_yaxes(title_text="requests", row=2, col=1)
    height = 320 + 18 * len(lane_of)
    return base_layout(fig, "Timeline: iterations per instance, requests in the system",
                       height_px=min(height, 1400))


def fig_iteration_breakdown(r: ServingResult) -> go.Figure:
    """Mean seconds per iteration by op kind, per role (ops summed before overlap)."""
    roles = [x for x in r.roles if x.breakdown_s]
    if not roles:
        return empty_figure("Iteration breakdown", "no iterations")
    kinds = sorted({k for x in roles for k in x.breakdown_s})
    colors = kind_colors(kinds)
    fig = go.Figure()
    for k in kinds:
        fig.add_trace(go.Bar(name=k, x=[x.role for x in roles], marker_color=colors[k],
                             y=[x.breakdown_s.get(k, 0.0) / MS for x in roles]))
    fig.add_trace(go.Scatter(name="iteration (mean, overlapped)", mode="markers",
                             x=[x.role for x in roles], y=[x.iteration.mean_s / MS for x in roles],
                             marker={"symbol": "diamond", "size": 14, "color": "black"}))
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title_text="ms per iteration")
    return base_layout(fig, "Iteration breakdown per role (ops before overlap; diamond: the "
                       "iteration)")


def fig_serving_memory(r: ServingResult) -> go.Figure:
    """Bytes per device of each role: weights, KV pool, workspace, reserve vs HBM."""
    roles = [x for x in r.roles if x.memory is not None]
    if not roles:
        return empty_figure("Memory", "no roles")
    parts: dict[str, list[float]] = {}
    for x in roles:
        m = x.memory
        assert m is not None
        items = {f"weights: {k}": v for k, v in m.weights_bytes.items() if v > 0}
        items |= {"KV cache": m.kv_pool_bytes, "workspace": m.workspace_bytes,
                  "reserve": m.reserve_bytes}
        for k in items:
            parts.setdefault(k, [])
        for k in parts:
            parts[k].append(items.get(k, 0.0))
    for k in parts:
        parts[k] += [0.0] * (len(roles) - len(parts[k]))
    colors = kind_colors(list(parts))
    fig = go.Figure()
    for k, v in parts.items():
        fig.add_trace(go.Bar(name=k, x=[x.role for x in roles], y=[b / GIB for b in v],
                             marker_color=colors[k]))
    fig.add_trace(go.Scatter(name="HBM", mode="markers", x=[x.role for x in roles],
                             y=[x.memory.capacity_bytes / GIB for x in roles],  # type: ignore[union-attr]
                             marker={"symbol": "line-ew-open", "size": 40, "color": "black"}))
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title_text="GiB per device")
    return base_layout(fig, "Memory per device (KV tokens per rank: " + ", ".join(
        f"{x.role} {x.memory.kv_tokens_per_rank:,}" for x in roles) + ")")  # type: ignore[union-attr]


FIGURES: list[tuple[str, str, Callable[[ServingResult], go.Figure]]] = [
    ("headline", "Headline", fig_serving_headline),
    ("latency-cdf", "Latency CDFs", fig_latency_cdf),
    ("timeline", "Timeline", fig_serving_timeline),
    ("iteration-breakdown", "Iteration breakdown", fig_iteration_breakdown),
    ("memory", "Memory", fig_serving_memory),
]

def serving_figure_div_ids() -> list[str]:
    return [f"fig-{key}" for key, _, _ in FIGURES]


def render_serving_html(r: ServingResult) -> str:
    """The serving report as one HTML page (loads plotly.min.js from its own folder)."""
    title = f"moesim serving report: {r.scenario}"
    notes = [f"{r.deployment} deployment, {r.num_devices:,} devices ({r.num_nodes:g} nodes)"]
    for role in r.roles:
        notes.append(f"{role.role}: " + ", ".join(f"{k}={v}" for k, v in sorted(
            role.layout.items())) + "; ops timed by " + ", ".join(
            f"{k} {v}" for k, v in role.cost_sources.items()))
    notes += r.notes
    parts = [head(title, PAGE_STYLE), f"<h1>{html.escape(title)}</h1>",
             "<div class='notes'>" + "<br>".join(html.escape(x) for x in notes) + "</div>"]
    for key, heading, builder in FIGURES:
        div = figure_div(builder(r), f"fig-{key}")
        parts.append(f"<section><h2>{html.escape(heading)}</h2>{div}</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def serving_summary_rows(r: ServingResult) -> list[tuple[str, str, float | int | str]]:
    rows: list[tuple[str, str, float | int | str]] = [
        ("headline", k, v) for k, v in r.flat_metrics().items() if v is not None]
    for role in r.roles:
        rows += [(f"breakdown.{role.role}", f"{k}_s", v) for k, v in role.breakdown_s.items()]
        if role.memory is not None:
            m = role.memory
            rows += [(f"memory.{role.role}", "kv_tokens_per_rank", m.kv_tokens_per_rank),
                     (f"memory.{role.role}", "kv_bytes_per_token", m.kv_bytes_per_token),
                     (f"memory.{role.role}", "weights_bytes", sum(m.weights_bytes.values())),
                     (f"memory.{role.role}", "peak_bytes", m.peak_bytes),
                     (f"memory.{role.role}", "max_sequences_per_rank", m.max_sequences_per_rank)]
    return rows


def _csv(header: list[str], rows: list[list[object]] | list[tuple[object, ...]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def serving_summary_csv(r: ServingResult) -> str:
    return _csv(["section", "metric", "value"], serving_summary_rows(r))


def requests_csv(r: ServingResult) -> str:
    """One row per request kept in the result: times in seconds, lengths in tokens."""
    q = r.requests
    return _csv(["arrival_s", "first_token_s", "finish_s", "input_tokens", "output_tokens"],
                [list(x) for x in zip(q.arrival_s, q.first_token_s, q.finish_s,
                                      q.input_tokens, q.output_tokens, strict=True)])


def iterations_csv(r: ServingResult) -> str:
    return _csv(["role", "instance", "start_s", "duration_s", "prefill_tokens", "decode_tokens"],
                [[i.role, i.instance, i.start_s, i.duration_s, i.prefill_tokens,
                  i.decode_tokens] for i in r.timeline])


def print_serving_summary(r: ServingResult, console: Console) -> None:
    table = Table(title=f"{r.scenario} (serving, {r.deployment})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for _, label, _, shown in headline_rows(r):
        table.add_row(label, shown)
    console.print(table)


def write_serving_report(r: ServingResult, out_dir: Path) -> dict[str, Path]:
    """result.json, summary.csv, requests.csv, iterations.csv, report.html and plotly.min.js
    in ``out_dir``, each written atomically."""
    out_dir = Path(out_dir)
    texts = {"result": r.to_json, "summary": lambda: serving_summary_csv(r),
             "requests": lambda: requests_csv(r), "iterations": lambda: iterations_csv(r),
             "html": lambda: render_serving_html(r)}
    paths = {k: write_text_atomic(out_dir / FILE_NAMES[k], make()) for k, make in texts.items()}
    return paths | {"plotly": write_plotly_js(out_dir)}
