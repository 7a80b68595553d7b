"""Each published training case and the scenario of the same run stay one configuration.

The sustained-efficiency fit (benchmarks/fit_sustained_efficiency.py) and the training
validation test read scenarios/*.yaml; `moesim check` reads scenarios/published/*.yaml. They
describe the same runs, so everything but names, the measured block and the FLOP-counting
convention of the source must be equal, or the fit and the check would disagree silently.
"""

from __future__ import annotations

import pytest

from moesim.specs import load_scenario

TWINS = [
    ("mixtral-8x7b-64xh100", "mcore-mixtral8x7b-h100-64gpu"),
    ("qwen3-30b-a3b-16xh100", "bridge-qwen3-30b-h100-16gpu"),
    ("qwen3-30b-a3b-8xh100", "automodel-qwen3-30b-8gpu-h100-bf16"),
    ("deepseek-v3-2048xh800", "dsv3-h800-2048gpu-step-breakdown"),
]


def _config(path):
    s = load_scenario(path)
    data = s.model_dump(exclude={"name", "description", "measured"})
    data["workload"].pop("causal_flops")  # the source's counting conventions, not the run
    data["workload"].pop("count_mtp_flops")
    return data


@pytest.mark.parametrize(("scenario", "case"), TWINS)
def test_published_case_is_the_scenario(root, scenario, case):
    assert _config(root / f"scenarios/{scenario}.yaml") == _config(
        root / f"scenarios/published/{case}.yaml")
