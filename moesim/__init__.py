"""moesim: a simulator and cost model for Mixture-of-Experts parallelism."""

__version__ = "0.1.0"
