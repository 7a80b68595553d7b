"""The engine: simulate one training step (DES or analytic) against the cost models."""

from moesim.engine.costs import CostProvider, LinearCostProvider
from moesim.engine.session import EngineSession
from moesim.engine.simulation import Simulation, simulate

__all__ = ["CostProvider", "EngineSession", "LinearCostProvider", "Simulation", "simulate"]
