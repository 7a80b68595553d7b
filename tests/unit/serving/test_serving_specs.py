"""Serving specs: every bad input is one SpecError line naming the field; training scenarios
are untouched by the workload union."""

from __future__ import annotations

import pytest
from serving_scenarios import AGGREGATED, PD_EP

from moesim.errors import InfeasibleError, SpecError
from moesim.serving import simulate_serving
from moesim.specs.loader import load_scenario


def _error(path, *sets: str) -> str:
    with pytest.raises(SpecError) as info:
        load_scenario(path, sets)
    msg = str(info.value)
    assert "\n" not in msg and len(msg) < 500, msg
    return msg


@pytest.mark.parametrize("setting, expect", [
    ("workload.slo.ttft_ms=0", "workload.slo.ttft_ms=0: Input should be greater than 0"),
    ("workload.slo.tpot_ms=-5", "workload.slo.tpot_ms=-5"),
    ("workload.arrival.rate_per_s=0", "workload.arrival.rate_per_s=0"),
    ("workload.arrival.kind=poison", "workload.arrival.kind='poison' is not a known kind"),
    ("workload.kind=servng", "workload.kind='servng' is not a known kind; valid: 'training', "
                             "'serving'"),
    ("workload.input_length.tokns=5", "unknown field 'workload.input_length.tokns'"),
    ("deployment.role.attention_dp_degree=16", "the roles need 16 devices"),
    ("deployment.role.attention_tp_degree=3", "attention_tp_degree=3 must divide"),
    ("deployment.role.attention_dp_degree=3", "must divide or be a multiple of the 8-device"),
    ("deployment.role.expert_parallel_degree=3", "expert_parallel_degree=3 must divide"),
    ("deployment.role.kv_cache_tokens=100", "kv_cache_tokens=100 cannot hold one request"),
    ("deployment.role.speculative={acceptance_rate: 0.7}", "has no MTP module"),
    ("deployment.role.speculative={acceptance_rate: 1.0}", "acceptance_rate=1.0"),
    ("parallelism.expert_parallel_degree=8", "parallelism: a serving scenario gives each "
                                             "role's layout under deployment"),
    ("deployment=null", "deployment is required with workload.kind='serving'"),
])
def test_bad_serving_specs_are_one_line(setting, expect):
    assert expect in _error(AGGREGATED, setting)


def test_deployment_in_a_training_scenario_is_refused(root):
    msg = _error(root / "scenarios" / "default.yaml",
                 "deployment={kind: aggregated, role: {attention_dp_degree: 8}}")
    assert "deployment is for serving scenarios" in msg


def test_training_scenarios_still_default_to_kind_training(root):
    s = load_scenario(root / "scenarios" / "default.yaml")
    assert s.workload.kind == "training" and not s.is_serving and s.deployment is None


def test_trace_file_errors_name_the_line(tmp_path):
    trace = tmp_path / "t.csv"
    trace.write_text("arrival_s,input_tokens,output_tokens\n0,100,10\n0.5,-3,10\n")
    sets = (f"workload.arrival={{kind: trace, path: {trace}}}", "workload.input_length=null",
            "workload.output_length=null", "workload.num_requests=null")
    msg = _error(AGGREGATED, *sets)
    assert "t.csv" in msg and "line 3: input_tokens=-3 must be a whole number" in msg
    trace.write_text("arrival_s,input_tokens\n0,100\n")
    assert "lacks output_tokens" in _error(AGGREGATED, *sets)
    (tmp_path / "t.jsonl").write_text('{"arrival_s": 0, "input_tokens": 8, "output_tokens": 2}\n'
                                      '{"arrival_s": "x", "input_tokens": 8, "output_tokens": 2}\n')
    sets = (f"workload.arrival={{kind: trace, path: {tmp_path / 't.jsonl'}}}", *sets[1:])
    assert "line 2: arrival_s='x' is not a number" in _error(AGGREGATED, *sets)


def test_a_trace_runs_in_its_own_order(tmp_path, make_serving):
    trace = tmp_path / "t.csv"
    trace.write_text("arrival_s,input_tokens,output_tokens,note\n0.2,64,4,b\n0,128,3,a\n")
    s = make_serving(f"workload.arrival={{kind: trace, path: {trace}}}",
                     "workload.input_length=null", "workload.output_length=null",
                     "workload.num_requests=null")
    r = simulate_serving(s)
    assert r.requests.input_tokens == [128, 64] and r.requests.arrival_s == [0.0, 0.2]


def test_missing_trace_file_is_named(tmp_path):
    msg = _error(AGGREGATED, f"workload.arrival={{kind: trace, path: {tmp_path / 'no.csv'}}}",
                 "workload.input_length=null", "workload.output_length=null")
    assert "workload.arrival.path=" in msg and "file not found" in msg


def test_a_kv_cache_sized_from_hbm_that_cannot_hold_one_request():
    s = load_scenario(AGGREGATED, ["workload.input_length={kind: fixed, tokens: 4000000}",
                                   "workload.num_requests=1"])
    with pytest.raises(InfeasibleError) as info:
        simulate_serving(s)
    msg = str(info.value)
    assert "\n" not in msg and "fewer than the longest request's 4,0" in msg


def test_weights_that_do_not_fit_are_infeasible():
    # DeepSeek-V3 on one H100: 671B parameters do not fit one device.
    s = load_scenario(PD_EP, ["deployment.prefill.attention_dp_degree=1",
                              "deployment.prefill.num_redundant_experts=0",
                              "workload.isolate=prefill", "workload.num_requests=1"])
    with pytest.raises(InfeasibleError, match="leave no KV cache"):
        simulate_serving(s)
