"""Assemble the report: offline HTML, summary CSV, result JSON, Chrome trace; rich summary.

``write_report`` is what ``moesim run`` and ``moesim report`` both call. Every file is
written atomically (temporary name, then rename) via :mod:`moesim.io`.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from moesim.io import write_text_atomic
from moesim.report import plain
from moesim.report.assets import FIGURE_CONFIG, PAGE_STYLE, PLOTLY_JS, head, write_plotly_js
from moesim.report.figures_moe import (
    dispatch_traffic_spec,
    expert_load_spec,
    links_spec,
    tokens_per_rank_spec,
)
from moesim.report.figures_step import (
    breakdown_segments,
    breakdown_spec,
    headline_rows,
    headline_spec,
    memory_spec,
)
from moesim.report.plain import Figure, PageLook
from moesim.report.timeline import timeline_spec, trace_claim
from moesim.report.trace import write_trace_file
from moesim.results.schema import SimulationResult

if TYPE_CHECKING:
    from rich.console import Console

# (div id suffix, section heading, builder of the figure's plain data) in report order; the
# fig_* functions of moesim.report give the same figures as plotly Figures.
FIGURES: list[tuple[str, str, Callable[[SimulationResult], Figure]]] = [
    ("headline", "Headline", headline_spec),
    ("breakdown", "Step breakdown", breakdown_spec),
    ("timeline", "Timeline", timeline_spec),
    ("memory", "Memory", memory_spec),
    ("expert-load", "Expert load", expert_load_spec),
    ("tokens-per-rank", "Tokens per EP rank", tokens_per_rank_spec),
    ("dispatch", "Dispatch traffic", dispatch_traffic_spec),
    ("links", "Link utilization", links_spec),
]

FILE_NAMES = {"result": "result.json", "summary": "summary.csv",
              "html": "report.html", "trace": "trace.json", "plotly": PLOTLY_JS}

def figure_div_ids() -> list[str]:
    """The id of every figure's div in report.html, in order."""
    return [f"fig-{key}" for key, _, _ in FIGURES]


def render_html(result: SimulationResult, look: PageLook | None = None) -> str:
    """The whole report as one HTML page; it loads plotly.min.js from its own folder (no
    network), which :func:`write_report` writes beside it. ``look``: the figures' template
    (read from plotly when not given)."""
    look = look or PageLook.load()
    title = f"moesim report: {result.scenario}"
    parts = [head(title, PAGE_STYLE), f"<h1>{html.escape(title)}</h1>", _notes_html(result)]
    for key, heading, builder in FIGURES:
        div = plain.figure_div(builder(result), f"fig-{key}", look, FIGURE_CONFIG)
        parts.append(f"<section><h2>{html.escape(heading)}</h2>{div}</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _notes_html(result: SimulationResult) -> str:
    lines = [f"fidelity {result.fidelity}, {result.num_devices:,} devices"]
    if result.parallelism:
        lines.append(", ".join(f"{k}={v}" for k, v in sorted(result.parallelism.items())))
    if result.cost_sources:
        lines.append("ops timed by: " + ", ".join(
            f"{k} {v}" for k, v in sorted(result.cost_sources.items())))
    if result.fidelity == "des":
        lines.append(trace_claim(result.trace))
    lines += result.notes
    return "<div class='notes'>" + "<br>".join(html.escape(x) for x in lines) + "</div>"


def summary_rows(result: SimulationResult) -> list[tuple[str, str, float | int | str]]:
    """(section, metric, value) rows of summary.csv; the unit is in the metric name (SI)."""
    rows: list[tuple[str, str, float | int | str]] = [
        ("headline", r.metric, r.value) for r in headline_rows(result)]
    rows += [("breakdown", _slug(label) + "_s", s) for label, s in breakdown_segments(result)]
    for m in result.memory:
        rows += [("memory", f"{m.rank_class}.multiplicity", m.multiplicity),
                 ("memory", f"{m.rank_class}.peak_bytes", m.memory.peak_bytes),
                 ("memory", f"{m.rank_class}.capacity_bytes", m.memory.capacity_bytes),
                 ("memory", f"{m.rank_class}.headroom_bytes", m.memory.headroom_bytes)]
    return rows


def _slug(label: str) -> str:
    return label.replace("exposed comm: ", "exposed_communication.").replace(
        "compute: ", "compute.").replace(" ", "_")


def summary_csv(result: SimulationResult) -> str:
    """summary.csv: a header ``section,metric,value`` and one row per number."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["section", "metric", "value"])
    w.writerows(summary_rows(result))
    return buf.getvalue()


def print_summary(result: SimulationResult, console: Console) -> None:
    """Print the headline table of ``result`` to a rich ``console``."""
    from rich.table import Table

    table = Table(title=f"{result.scenario} ({result.fidelity})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for r in headline_rows(result):
        style = "red" if r.metric == "min_memory_headroom_bytes" and not result.fits_memory else ""
        table.add_row(r.label, r.display, style=style)
    console.print(table)


def write_report(result: SimulationResult, out_dir: Path) -> dict[str, Path]:
    """Write result.json, summary.csv, trace.json, report.html and the plotly.min.js the page
    loads into ``out_dir``.

    Returns the paths under the keys "result", "summary", "trace", "html" and "plotly".
    """
    out_dir = Path(out_dir)
    texts = {"result": result.to_json, "summary": lambda: summary_csv(result)}
    paths = {key: write_text_atomic(out_dir / FILE_NAMES[key], make())
             for key, make in texts.items()}
    paths["trace"] = write_trace_file(result, out_dir / FILE_NAMES["trace"]).path  # streamed
    paths["html"] = write_text_atomic(out_dir / FILE_NAMES["html"], render_html(result))
    return paths | {"plotly": write_plotly_js(out_dir)}
