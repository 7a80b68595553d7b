"""Reports of a simulated step: one plotly figure per ``fig_*``, HTML, CSV, JSON, Chrome trace.

Reads :class:`~moesim.results.schema.SimulationResult` only; never simulates.
"""

from moesim.report.figures_moe import (
    fig_dispatch_traffic,
    fig_expert_load,
    fig_links,
    fig_tokens_per_rank,
)
from moesim.report.figures_step import fig_breakdown, fig_headline, fig_memory
from moesim.report.render import (
    figure_div_ids,
    print_summary,
    render_html,
    summary_csv,
    write_report,
)
from moesim.report.timeline import fig_timeline
from moesim.report.trace import chrome_trace, chrome_trace_json

__all__ = [
    "chrome_trace", "chrome_trace_json", "fig_breakdown", "fig_dispatch_traffic",
    "fig_expert_load", "fig_headline", "fig_links", "fig_memory", "fig_timeline",
    "fig_tokens_per_rank", "figure_div_ids", "print_summary", "render_html", "summary_csv",
    "write_report",
]
