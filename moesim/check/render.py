"""Renderings of a CheckReport: the offline HTML page and the README's markdown block.

The page: predicted against published, log-log, with the identity line and a 10% band
(plotly.js inlined once, no network), then the per-category mean errors and every row.

The README block sits between ``<!-- check-table:start -->`` and ``<!-- check-table:end -->``
and holds a per-category summary table and a per-point table. The regression test parses the
summary back (:func:`parse_stated_errors`) and fails when the suite's error rises above it.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import plotly.graph_objects as go

from moesim.check.suite import CheckReport
from moesim.errors import SpecError
from moesim.report.assets import SORT_SCRIPT, TABLE_STYLE, figure_div, head, write_page
from moesim.report.style import base_layout, empty_figure, kind_colors
from moesim.units import eng

# The band drawn around the identity line: the collective-bandwidth target of issue 10.
BAND = 0.10


def _ratio_span(report: CheckReport) -> tuple[float, float]:
    """Low and high end of every value on the plot, widened by the band (for the lines)."""
    values = [v for r in report.rows for v in (r.published, r.predicted) if v > 0]
    return min(values) / (1 + 2 * BAND), max(values) * (1 + 2 * BAND)


def fig_check_scatter(report: CheckReport) -> go.Figure:
    """Predicted against published per point (log-log), one colour per category.

    Values are in each metric's own units (GB/s, TFLOP/s, s, ...): the axes are the value,
    and the distance from the identity line is the relative error.
    """
    title = f"moesim check ({report.fidelity}): predicted vs published"
    rows = [r for r in report.rows if r.published > 0 and r.predicted > 0]
    if not rows:
        return empty_figure(title, "no measured points")
    lo, hi = _ratio_span(report)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[lo, hi, hi, lo], y=[lo * (1 - BAND), hi * (1 - BAND),
                                                     hi * (1 + BAND), lo * (1 + BAND)],
                             fill="toself", mode="none", fillcolor="rgba(120,120,120,0.15)",
                             name=f"±{BAND:.0%} band", hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="identity",
                             line={"color": "#444", "dash": "dash"}, hoverinfo="skip"))
    colors = kind_colors({r.category for r in rows})
    for cat in sorted(colors):
        mine = [r for r in rows if r.category == cat]
        fig.add_trace(go.Scatter(
            x=[r.published for r in mine], y=[r.predicted for r in mine], mode="markers",
            name=cat, marker={"size": 9, "color": colors[cat],
                              "symbol": ["circle-open" if r.in_sample else "circle" for r in mine]},
            text=[f"{r.case}: {r.label} ({r.metric}, {r.units})<br>error {r.error_pct:+.1f}%"
                  + (" (in-sample)" if r.in_sample else "") for r in mine],
            hovertemplate="%{text}<br>published %{x:.4g}<br>predicted %{y:.4g}<extra></extra>"))
    fig.update_xaxes(type="log", title="published (metric's own units)")
    fig.update_yaxes(type="log", title="predicted (same units)", scaleanchor="x")
    return base_layout(fig, title, height_px=700)


def _summary_table(report: CheckReport) -> str:
    header = ("<tr><th>category</th><th>points</th><th>mean |error|</th>"
              "<th>held-out points</th><th>held-out mean |error|</th></tr>")
    body = "".join(
        f"<tr><td>{html.escape(s.category)}</td><td>{s.num_points}</td><td>{s.mape_pct:.1f}%"
        f"</td><td>{s.num_held_out}</td><td>"
        f"{'-' if s.held_out_mape_pct is None else f'{s.held_out_mape_pct:.1f}%'}</td></tr>"
        for s in report.summary())
    return f"<table>{header}{body}</table>"


def _rows_table(report: CheckReport) -> str:
    header = ("<tr><th>case</th><th>point</th><th>metric</th><th>published</th>"
              "<th>predicted</th><th>error</th><th>units</th><th>source</th></tr>")
    body = "".join(
        f"<tr><td>{html.escape(r.case)}</td><td>{html.escape(r.label)}"
        f"{' (in-sample)' if r.in_sample else ''}</td><td>{html.escape(r.metric)}</td>"
        f"<td data-value='{r.published!r}'>{eng(r.published)}</td>"
        f"<td data-value='{r.predicted!r}'>{eng(r.predicted)}</td><td>{r.error_pct:+.1f}%</td>"
        f"<td>{html.escape(r.units)}</td><td>{html.escape(r.source)}</td></tr>"
        for r in report.rows)
    return f"<table class='sortable'><thead>{header}</thead><tbody>{body}</tbody></table>"


_STYLE = ("body{font-family:sans-serif;margin:16px 24px;color:#222}"
          "table{border-collapse:collapse;font-size:13px;margin:8px 0 24px}"
          "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}")


def render_check_html(report: CheckReport) -> str:
    """The whole check page as one HTML string; it loads plotly.min.js from its folder."""
    title = f"moesim check: {len(report.rows)} published points ({report.fidelity})"
    return "".join([
        head(title, TABLE_STYLE + _STYLE + "table.sortable td,table.sortable th"
             "{text-align:left;white-space:normal}"), f"<h1>{html.escape(title)}</h1>",
        figure_div(fig_check_scatter(report), "fig-check-scatter"),
        "<h2>Mean absolute error per category</h2>", _summary_table(report),
        "<p>Open markers and '(in-sample)': a moesim constant was fitted to that point among "
        "others (docs/validation.md).</p>",
        "<h2>Every point</h2>", _rows_table(report), SORT_SCRIPT, "</body></html>"])


def write_check_html(report: CheckReport, out_dir: Path) -> Path:
    """Write ``check.html`` (and the plotly.min.js it loads) into ``out_dir``; returns it."""
    return write_page(Path(out_dir) / "check.html", render_check_html(report))


# --- README block ---------------------------------------------------------------------

START = "<!-- check-table:start -->"
END = "<!-- check-table:end -->"
SUMMARY_HEADER = "| category | points | mean abs error | held-out points | held-out mean abs error |"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}%"


def summary_markdown(report: CheckReport) -> str:
    """One row per category: points, mean |error| over all, over the held-out points."""
    lines = [SUMMARY_HEADER, "|---|---|---|---|---|"]
    lines += [f"| {s.category} | {s.num_points} | {_pct(s.mape_pct)} | {s.num_held_out} | "
              f"{_pct(s.held_out_mape_pct)} |" for s in report.summary()]
    return "\n".join(lines)


def _num(v: float) -> str:
    return eng(v)


def rows_markdown(report: CheckReport) -> str:
    """One row per published point, grouped by category."""
    lines = ["| category | case | point | published | predicted | error | units |",
             "|---|---|---|---|---|---|---|"]
    for r in sorted(report.rows, key=lambda r: (r.category, r.case)):
        label = r.label if r.kind != "training" else r.metric
        star = " (in-sample)" if r.in_sample else ""
        lines.append(f"| {r.category} | {r.case} | {label}{star} | {_num(r.published)} | "
                     f"{_num(r.predicted)} | {r.error_pct:+.1f}% | {r.units} |")
    return "\n".join(lines)


def check_block(report: CheckReport) -> str:
    """The whole marked block, markers included, ready for README.md."""
    return "\n".join([
        START,
        f"Generated by `python scripts/gen_check_table.py` ({report.fidelity} fidelity, "
        f"{len(report.rows)} points); do not edit by hand. \"in-sample\": a moesim constant "
        "was fitted to that point among others (docs/validation.md).",
        "", summary_markdown(report), "", rows_markdown(report), END])


def replace_block(text: str, block: str) -> str:
    """``text`` with its marked block replaced by ``block`` (appended when there is none)."""
    i, j = text.find(START), text.find(END)
    if i < 0 and j < 0:
        return text.rstrip("\n") + "\n\n" + block + "\n"
    if i < 0 or j < i:
        raise SpecError(f"README has a broken check-table block: '{START}' must come before "
                        f"'{END}'")
    return text[:i] + block + text[j + len(END):]


_ROW = re.compile(r"^\|\s*([a-z_]+)\s*\|\s*(\d+)\s*\|\s*([\d.]+)%\s*\|\s*(\d+)\s*\|"
                  r"\s*([\d.]+%|-)\s*\|\s*$")


def parse_stated_errors(text: str) -> dict[str, tuple[float, float | None]]:
    """Category -> (stated mean |error| %, stated held-out mean |error| % or None), read from
    the summary table inside the marked block of ``text``."""
    i, j = text.find(START), text.find(END)
    if i < 0 or j < i:
        raise SpecError(f"no check-table block ('{START}' ... '{END}') in the README")
    block = text[i:j]
    if SUMMARY_HEADER not in block:
        raise SpecError("the check-table block has no per-category summary table")
    out: dict[str, tuple[float, float | None]] = {}
    for line in block.splitlines():
        m = _ROW.match(line.strip())
        if m:
            held = None if m.group(5) == "-" else float(m.group(5).rstrip("%"))
            out[m.group(1)] = (float(m.group(3)), held)
    return out
