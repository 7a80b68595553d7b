"""Hand-derived serving cases: the DES against the iteration prices it is built from.

An idle system serving one request runs one prefill iteration (the whole prompt in one chunk)
and then one decode step per output token, so TTFT is that prefill iteration's price and TPOT
the mean of the decode steps' prices (each at its context), both read from the same pricer by
hand. Little's law, conservation and the KV-cache limit follow.
"""

from __future__ import annotations

import numpy as np
import pytest

from moesim.program.serving import AttentionWork
from moesim.serving import RankLoad, ServingSimulation


def _one(make_serving, *sets):
    sim = ServingSimulation(make_serving(
        "workload.num_requests=1", "workload.arrival={kind: burst}",
        "workload.input_length={kind: fixed, tokens: 512}",
        "workload.output_length={kind: fixed, tokens: 5}", *sets))
    return sim, sim.run()


def test_idle_ttft_is_one_prefill_and_tpot_the_decode_steps(make_serving):
    sim, r = _one(make_serving)
    pricer = sim.roles["aggregated"].pricer
    prefill = pricer.price(RankLoad(512, AttentionWork(chunks=((1, 512, 512),)), 1)).time_s
    steps = [pricer.price(RankLoad(1, AttentionWork(1, 1, ctx), 1)).time_s
             for ctx in (513, 514, 515, 516)]
    assert r.ttft.mean_s == pytest.approx(prefill, rel=1e-12)
    assert r.tpot.mean_s == pytest.approx(sum(steps) / 4, rel=1e-12)
    assert r.e2e.mean_s == pytest.approx(prefill + sum(steps), rel=1e-12)
    assert r.roles[0].iterations == 5


def test_disaggregated_one_request_adds_the_kv_transfer(make_serving):
    sim = ServingSimulation(make_serving(
        "workload.num_requests=1", "workload.arrival={kind: burst}",
        "workload.input_length={kind: fixed, tokens: 512}",
        "workload.output_length={kind: fixed, tokens: 5}", disaggregated=True))
    r = sim.run()
    pre, dec = sim.roles["prefill"].pricer, sim.roles["decode"].pricer
    prefill = pre.price(RankLoad(512, AttentionWork(chunks=((1, 512, 512),)), 1)).time_s
    steps = [dec.price(RankLoad(1, AttentionWork(1, 1, ctx), 1)).time_s
             for ctx in (513, 514, 515, 516)]
    transfer = float(sim.transfer_s[0])
    # 512 tokens x 4 KV heads x 128 x 2 (K, V) x 2 layers x 2 bytes over one 400G NIC.
    assert transfer == pytest.approx(512 * 4 * 128 * 2 * 2 * 2 / 50e9, rel=0.2)
    assert r.ttft.mean_s == pytest.approx(prefill, rel=1e-12)
    assert r.e2e.mean_s == pytest.approx(prefill + transfer + sum(steps), rel=1e-9)


def test_kv_cache_limit_caps_concurrency_at_the_closed_form(make_serving):
    # One rank whose cache holds 3 requests of 100 + 20 tokens (plus 10 spare): 12 requests
    # arrive at once, at most floor(370 / 120) = 3 run together, so the run takes 4 rounds.
    sim = ServingSimulation(make_serving(
        "deployment.role.attention_dp_degree=1", "deployment.role.kv_cache_tokens=370",
        "workload.num_requests=12", "workload.arrival={kind: burst}",
        "workload.input_length={kind: fixed, tokens: 100}",
        "workload.output_length={kind: fixed, tokens: 20}"))
    r = sim.run()
    role = r.roles[0]
    assert sim.roles["aggregated"].memory.max_sequences(100, 20) == 3
    assert role.peak_running_per_rank == 3
    assert role.peak_kv_tokens_per_rank <= role.memory.kv_tokens_per_rank == 370
    first = np.sort(np.asarray(r.requests.first_token_s))
    assert len(set(np.round(first, 12))) == 4  # four admission rounds


def test_littles_law_on_a_poisson_stream_at_low_load(make_serving):
    r = ServingSimulation(make_serving(
        "workload.num_requests=200", "workload.arrival.rate_per_s=3",
        "workload.input_length={kind: uniform, min_tokens: 100, max_tokens: 500}",
        "workload.output_length={kind: uniform, min_tokens: 2, max_tokens: 20}")).run()
    # L = lambda W: the time-mean number of requests in the system against the arrival rate
    # (estimated from the arrivals, (n - 1) / their span) times the mean time in the system.
    a = np.asarray(r.requests.arrival_s)
    rate = (len(a) - 1) / (a[-1] - a[0])
    assert rate == pytest.approx(3.0, rel=0.2)
    assert r.mean_in_system == pytest.approx(rate * r.e2e.mean_s, rel=0.03)
    assert r.mean_in_system < 1.0  # low load: mostly one request at a time


def test_conservation_and_causality(make_serving):
    r = ServingSimulation(make_serving("workload.num_requests=150")).run()
    q = r.requests
    a, f, e = (np.asarray(x) for x in (q.arrival_s, q.first_token_s, q.finish_s))
    assert r.completed == r.num_requests == len(a)
    assert (f >= a).all() and (e >= f).all()
    for role in r.roles:
        assert role.peak_kv_tokens_per_rank <= role.memory.kv_tokens_per_rank
        assert role.peak_running_per_rank <= role.layout["max_batch_requests"]
        assert role.prefill_tokens == int(np.sum(q.input_tokens))
        assert role.decode_tokens == pytest.approx(float(np.sum(np.asarray(q.output_tokens) - 1)))


def test_equal_inputs_give_identical_json(make_serving):
    a = ServingSimulation(make_serving("workload.num_requests=40")).run().to_json()
    b = ServingSimulation(make_serving("workload.num_requests=40")).run().to_json()
    assert a == b


def test_speculative_decoding_emits_the_expected_tokens_per_step(make_serving):
    # k = 2 drafts accepted at 0.5: 1 + 0.5 + 0.25 = 1.75 tokens per step, so 1 + 6 = 7
    # output tokens take ceil(6 / 1.75) = 4 decode steps after the prefill.
    from serving_scenarios import AGGREGATED

    from moesim.specs.loader import load_scenario

    s = load_scenario(AGGREGATED, (
        "model.num_layers=2", "model.num_mtp_layers=1", "workload.num_requests=1",
        "workload.arrival={kind: burst}", "workload.input_length={kind: fixed, tokens: 64}",
        "workload.output_length={kind: fixed, tokens: 7}",
        "deployment.role.speculative={num_draft_tokens: 2, acceptance_rate: 0.5}"))
    r = ServingSimulation(s).run()
    assert r.roles[0].iterations == 1 + 4
    assert r.roles[0].breakdown_s.get("mtp", 0.0) > 0  # the draft steps ran
