"""How many bytes every device holds at its peak, and whether the layout fits.

Public API: :func:`estimate_memory` -> :class:`MemoryReport`, :func:`ensure_fits`,
:func:`parameter_bytes_per_rank`, :func:`bytes_per_param`, the per-layer activation model in
:mod:`moesim.memory.activations` and the pipeline in-flight counts in
:mod:`moesim.memory.layout`. docs/memory.md explains the model and its sources.
"""

from moesim.memory.activations import ActivationContext, context_for, layer_bytes
from moesim.memory.layout import in_flight, interleaved_in_flight, rank_chunks
from moesim.memory.params import (
    RankParams,
    bytes_per_param,
    model_state_bytes,
    parameter_bytes_per_rank,
    rank_params,
)
from moesim.memory.rank import TERMS
from moesim.memory.report import MemoryReport, ensure_fits, estimate_memory

__all__ = [
    "ActivationContext", "MemoryReport", "RankParams", "TERMS", "bytes_per_param",
    "context_for", "ensure_fits", "estimate_memory", "in_flight", "interleaved_in_flight",
    "layer_bytes", "model_state_bytes", "parameter_bytes_per_rank", "rank_chunks", "rank_params",
]
