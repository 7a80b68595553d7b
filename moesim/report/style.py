"""Shared look of the report figures: colours per op kind, empty-figure placeholder, layout.

``base_layout`` and ``empty_figure`` work on plotly Figures (plan, check and serving pages);
the run report builds plain figure data with the same look (:mod:`moesim.report.plain`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from plotly.colors import qualitative

if TYPE_CHECKING:
    import plotly.graph_objects as go

# Enough distinct colours for every op kind a step has (compute kinds + comm kinds + waits);
# assigned in sorted-name order so the same kind has the same colour in every figure.
_PALETTE: list[str] = list(qualitative.Plotly) + list(qualitative.D3) + list(qualitative.Dark24)

FIG_WIDTH_PX = 1300


def kind_colors(kinds: list[str] | set[str]) -> dict[str, str]:
    """A stable colour for each kind name (sorted order, palette wraps around)."""
    return {k: _PALETTE[i % len(_PALETTE)] for i, k in enumerate(sorted(set(kinds)))}


def base_layout(fig: go.Figure, title: str, height_px: int = 450) -> go.Figure:
    """Apply the common title, size and template to ``fig`` (returned for chaining)."""
    import plotly.io as pio

    fig.update_layout(
        title={"text": title, "x": 0.01, "xanchor": "left"},
        # the registry's built Template object: naming it ("plotly_white") builds it anew
        # from its JSON for every figure, a third of the report's layout time
        template=pio.templates["plotly_white"],
        height=height_px,
        width=FIG_WIDTH_PX,
        margin={"l": 90, "r": 30, "t": 70, "b": 60},
        legend={"orientation": "v"},
    )
    return fig


def empty_figure(title: str, message: str) -> go.Figure:
    """A drawn figure that says why there is no data (the report always has every figure)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_annotation(text=message, x=0.5, y=0.5, xref="paper", yref="paper",
                       showarrow=False, font={"size": 16})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return base_layout(fig, title, height_px=220)
