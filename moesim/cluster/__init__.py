"""Cluster layer: the device/switch graph of a topology, routes, placement, process groups."""

from moesim.cluster.groups import PLACEMENTS, ProcessGroups, place_ranks, process_groups
from moesim.cluster.plan import TIER_NAMES, ClusterPlan, build_cluster

__all__ = ["ClusterPlan", "build_cluster", "ProcessGroups", "process_groups", "place_ranks",
           "PLACEMENTS", "TIER_NAMES"]
