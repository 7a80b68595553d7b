"""Goodput: what failures, checkpoints and stragglers take from the ideal step, and what the
run costs in money and energy (docs/goodput.md). Pure functions over specs and the engine's
step numbers; the plan layer calls them."""

from moesim.goodput.checkpoint import CheckpointCost, checkpoint_bytes, checkpoint_cost
from moesim.goodput.defaults import DEFAULTS_PATH, goodput_for, load_defaults, load_goodput
from moesim.goodput.estimate import (
    GoodputResult,
    estimate_goodput,
    steady_efficiency,
    straggler_factor,
)

__all__ = [
    "DEFAULTS_PATH",
    "CheckpointCost",
    "GoodputResult",
    "checkpoint_bytes",
    "checkpoint_cost",
    "estimate_goodput",
    "goodput_for",
    "load_defaults",
    "load_goodput",
    "steady_efficiency",
    "straggler_factor",
]
