"""Network cost models: max-min fluid flows, collectives, all-to-all(-v), point-to-point."""

from moesim.network.alltoall import A2A_ALGORITHMS, all_to_all_v_time
from moesim.network.collectives import (
    ALGORITHMS,
    OPS,
    CollectiveResult,
    bus_factor,
    collective_time,
    send_time,
)
from moesim.network.maxmin import FlowSet, MaxMinResult, make_flow_set, max_min_rates, solve_max_min

__all__ = ["collective_time", "all_to_all_v_time", "send_time", "solve_max_min", "max_min_rates",
           "make_flow_set", "FlowSet", "MaxMinResult", "CollectiveResult", "bus_factor", "OPS",
           "ALGORITHMS", "A2A_ALGORITHMS"]
