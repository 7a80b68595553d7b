"""Frozen simulation results with a stable JSON schema."""

from moesim.results.schema import (
    SCHEMA_VERSION,
    BreakdownResult,
    LinkUsageResult,
    MemoryRankResult,
    RankClassMemoryResult,
    RoutingLayerResult,
    RoutingResult,
    SimulationResult,
    TraceEventResult,
    TraceResult,
)

__all__ = [
    "SCHEMA_VERSION", "BreakdownResult", "LinkUsageResult", "MemoryRankResult",
    "RankClassMemoryResult", "RoutingLayerResult", "RoutingResult", "SimulationResult",
    "TraceEventResult", "TraceResult",
]
