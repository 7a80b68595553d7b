"""Serving: a request-level discrete-event simulation of MoE inference (docs/serving.md).

Requests arrive, are batched by each instance's continuous-batching scheduler, prefilled,
handed to decode instances over the fabric (prefill/decode disaggregation) and decoded;
every iteration is priced through the same cost providers as a training step.
"""

from moesim.serving.pricing import IterationPrice, RankLoad, RolePricer
from moesim.serving.simulation import ServingSimulation, simulate_serving

__all__ = ["IterationPrice", "RankLoad", "RolePricer", "ServingSimulation", "simulate_serving"]
