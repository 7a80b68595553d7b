# %% [markdown]
# # moesim quickstart
#
# moesim's Python API in five steps: load a scenario, simulate one training step, compare
# expert-parallel degrees in a table, search the layouts of a smaller scenario, write the
# HTML report. Run it from the repository root (`python docs/examples/quickstart.py [OUT]`),
# or open it in Jupyter or VS Code, which read the `# %%` cells as a notebook.
# `to_dataframe()` needs pandas (`pip install pandas`).

# %%
import sys
from pathlib import Path

import moesim

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else Path(
    "reports/quickstart")

# %% [markdown]
# ## 1. Load a scenario
# Mixtral 8x7B on 64 H100 (TP1 EP8 PP4 VPP8), as `moesim run` simulates it by default.
# Overrides take the `--set` paths of the command line.

# %%
scenario = moesim.load_scenario("scenarios/default.yaml")
print(scenario.name, scenario.devices, "devices,", scenario.model_spec.name)

# %% [markdown]
# ## 2. Simulate one step
# `fidelity="analytic"` is the closed form (milliseconds); the default `"des"` runs the
# event simulation. Results are SI: seconds, bytes, FLOP/s.

# %%
result = moesim.simulate(scenario, fidelity="analytic")
print(f"step {result.step_time_s * 1e3:,.1f} ms, {result.tokens_per_s:,.0f} tokens/s, "
      f"MFU {result.mfu:.1%}, fits in memory: {result.fits_memory}")

# %% [markdown]
# ## 3. Compare expert-parallel degrees
# Each result is one row of `to_dataframe()`; concatenate them to compare.

# %%
try:
    import pandas as pd
except ImportError:
    pd = None
rows = []
for ep in (2, 4, 8):
    r = moesim.simulate(scenario, fidelity="analytic",
                        sets={"parallelism.expert_parallel_degree": ep})
    rows.append(r.to_dataframe() if pd is not None else r.flat_metrics())
if pd is not None:
    table = pd.concat(rows, ignore_index=True)
    print(table[["parallelism.ep", "step_time_s", "mfu", "min_headroom_bytes"]].to_string())
else:
    for row in rows:
        print(row["parallelism.ep"], row["step_time_s"], row["mfu"])

# %% [markdown]
# ## 4. Search layouts
# Every layout of Qwen3-30B-A3B on 16 H100 that fits, the best ten ranked with the
# analytic engine (`des_top` > 0 re-simulates the best few with the DES).

# %%
found = moesim.plan("scenarios/qwen3-30b-a3b-16xh100.yaml", analytic_budget=10, des_top=0)
print(f"{found.considered:,} layouts considered, {len(found.ranked)} ranked; best: "
      f"{found.best.layout.label} at {found.best.tokens_per_s:,.0f} tokens/s")
print("excluded:", dict(found.excluded.most_common(3)))

# %% [markdown]
# ## 5. Write the report
# report.html (with plotly.min.js beside it, so it opens offline), result.json,
# summary.csv and trace.json (open it in Perfetto or chrome://tracing).

# %%
paths = moesim.write_report(result, OUT)
print("wrote", ", ".join(str(p) for p in paths.values()))
