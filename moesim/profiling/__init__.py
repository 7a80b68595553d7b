"""The torch profiling harness (extra ``moesim[profile]``): times real kernels and collectives.

This package is the only code in moesim that imports torch, and it does so inside
functions, so ``import moesim.profiling`` works without torch installed.
"""

from __future__ import annotations

from moesim.profiling.grids import ProfileGrid, default_grid
from moesim.profiling.runner import run_profile

__all__ = ["ProfileGrid", "default_grid", "run_profile"]
