"""Names and defaults that moesim's command line needs while it builds its options.

Each belongs to the package named beside it, which re-exports it under the same name
(``moesim.network.OPS`` is this ``OPS``); they live here, in a module that imports nothing,
so that ``moesim --help`` builds every subcommand's choices, limits and defaults without
importing those packages (numpy, the engine, plotly; tests/cli/test_cli_import_cost.py).
"""

from __future__ import annotations

# --- moesim.network.collectives -----------------------------------------------------------
OPS = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "send")

# --- moesim.cluster.groups ----------------------------------------------------------------
PLACEMENTS = ("packed", "spread")

# --- moesim.memory.rank -------------------------------------------------------------------
TERMS = ("weights_dense", "weights_expert", "gradients", "optimizer_states", "activations",
         "recompute_working_set", "a2a_buffers", "comm_buckets", "optimizer_step_temporaries",
         "framework_reserve", "allocator_fragmentation")

# --- moesim.routing.step ------------------------------------------------------------------
# Draws per layer by default: 8 keeps a DeepSeek-V3 step (58 layers, EP64, 256 experts)
# near half a second on a 2-core VM (benchmarks/bench_routing.py, docs/routing.md).
DEFAULT_DRAWS_PER_LAYER = 8

# --- moesim.plan.executors ----------------------------------------------------------------
# Processes one pool may start: each holds a copy of moesim (about 150 MB); past a few per core
# they only add memory. 256 is 4 per core on a 64-core host.
MAX_WORKERS = 256

# --- moesim.plan.search -------------------------------------------------------------------
# Analytic evaluations a search makes by default: the engine's analytic fidelity takes
# 0.1-1.3 s per Qwen3-235B layout on the 2-core VM (docs/planning.md), so 120 take ~12 s on
# two workers and the whole Qwen3 / 256-GPU search ~26 s, with room for a loaded machine.
DEFAULT_ANALYTIC_BUDGET = 120

# --- moesim.plan.evaluate -----------------------------------------------------------------
ENGINE_EVALUATOR = "moesim.plan.evaluate:engine_point"
ENGINE_MEMORY = "moesim.plan.evaluate:engine_memory"
PLAN_EVALUATOR = "moesim.plan.evaluate:engine_layout"
