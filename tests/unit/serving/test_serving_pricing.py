"""The iteration pricer: its grid, its two-resource schedule, and the directions of its prices."""

from __future__ import annotations

import math

import numpy as np
import pytest

from moesim.program.serving import AttentionWork
from moesim.serving import RankLoad, RolePricer
from moesim.serving.pricing import COMM, COMPUTE, _ClassBody, _Seg, bucket, merge, schedule


def test_bucket_is_exact_small_and_within_2_percent_above():
    assert [bucket(x) for x in range(33)] == list(range(33))
    xs = np.unique(np.geomspace(33, 1e7, 4000).astype(int))
    b = np.array([bucket(x) for x in xs])
    # Half a grid step in log space, plus the rounding to a whole token.
    assert np.all(np.abs(b - xs) <= xs * (2 ** (1 / 32) - 1) + 0.5)
    assert np.all(np.diff(b) >= 0)


def test_one_chain_runs_in_order():
    chain = [_Seg(COMPUTE, 1.0, "a"), _Seg(COMM, 2.0, "d"), _Seg(COMPUTE, 3.0, "b")]
    assert schedule([chain]) == pytest.approx(6.0)


def test_two_chains_hide_each_others_communication():
    # A.c [0,1], A.m [1,2] beside B.c [1,2], A.c2 [2,3] beside B.m [2,3], B.c2 [3,4]: 4, not 6.
    chain = [_Seg(COMPUTE, 1.0, "c"), _Seg(COMM, 1.0, "m"), _Seg(COMPUTE, 1.0, "c")]
    assert schedule([chain, chain]) == pytest.approx(4.0)


def test_shared_experts_run_beside_their_own_dispatch():
    # c [0,1]; dispatch [1,3] and the shared experts [1,2.5]; the next op waits for both: 4.
    segs = [_Seg(COMPUTE, 1.0, "c"), _Seg(COMM, 2.0, "ep_dispatch"),
            _Seg(COMPUTE, 1.5, "shared_experts", skip=True), _Seg(COMPUTE, 1.0, "experts")]
    assert schedule([segs]) == pytest.approx(4.0)
    body = _ClassBody.of(segs)
    assert body.total - body.overlap == pytest.approx(4.0)


@pytest.mark.parametrize("seed", range(12))
def test_closed_form_of_one_chain_matches_the_schedule(seed):
    rng = np.random.default_rng(seed)
    segs = []
    for _ in range(int(rng.integers(2, 6))):
        segs += [_Seg(COMPUTE, float(rng.uniform(0, 2)), "c"),
                 _Seg(COMM, float(rng.uniform(0, 2)), "ep_dispatch")]
        if rng.uniform() < 0.6:
            segs.append(_Seg(COMPUTE, float(rng.uniform(0, 3)), "shared_experts", skip=True))
        segs.append(_Seg(COMPUTE, float(rng.uniform(0, 2)), "experts"))
    body = _ClassBody.of(segs)
    assert schedule([merge(segs)]) == pytest.approx(body.total - body.overlap)
    assert schedule([merge(segs)] * 2) <= 2 * (body.total - body.overlap) + 1e-12


def test_sm_share_slows_overlapped_compute():
    chain = [_Seg(COMPUTE, 1.0, "c"), _Seg(COMM, 1.0, "m"), _Seg(COMPUTE, 1.0, "c")]
    assert schedule([chain, chain], 0.2) > schedule([chain, chain])


@pytest.fixture(scope="module")
def decode_pricer():
    from serving_scenarios import scenario

    s = scenario(disaggregated=True)
    return RolePricer(s, "decode", s.deployment.decode)


def test_decode_steps_never_get_faster_with_batch_or_context(decode_pricer):
    def t(batch, ctx):
        return decode_pricer.price(RankLoad(batch, AttentionWork(batch, 1, ctx), batch)).time_s
    batches = [1, 2, 8, 32, 64]
    assert all(t(a, 1000) <= t(b, 1000) for a, b in zip(batches, batches[1:], strict=False))
    ctxs = [16, 256, 2048, 8192]
    assert all(t(16, a) <= t(16, b) for a, b in zip(ctxs, ctxs[1:], strict=False))


def test_prices_are_memoized_per_bucket(decode_pricer):
    a = decode_pricer.price(RankLoad(40, AttentionWork(40, 1, 1000), 40))
    b = decode_pricer.price(RankLoad(40, AttentionWork(40, 1, 1001), 40))
    assert a is b  # 1000 and 1001 share a context bucket
    assert math.isfinite(a.time_s) and a.time_s > 0
    assert set(a.by_kind_s) >= {"attention", "experts", "ep_dispatch", "ep_combine", "host"}


def test_low_latency_dispatch_uses_the_measured_h100_series():
    # DeepSeek-V3's decode on one H100 node (EP8, 256 experts), 8 tokens per rank: the H100
    # table's measured low-latency dispatch (SGLang's DeepEP benchmark in aiconfigurator-core
    # 0.12.0) is 16.05 us and combine 14.37 us; 9 nodes are not measured: the model answers.
    from serving_scenarios import PD_EP

    from moesim.specs.loader import load_scenario

    s = load_scenario(PD_EP, ["workload.isolate=decode", "deployment.decode.attention_dp_degree=8",
                              "deployment.decode.num_redundant_experts=0"])
    p = RolePricer(s, "decode", s.deployment.decode)
    assert p.all_to_all_time("dispatch", 8) == pytest.approx(16.05e-6)
    assert p.all_to_all_time("combine", 8) == pytest.approx(14.37e-6)
    assert p.sources == {"measured": 2}
    s9 = load_scenario(PD_EP, ["workload.isolate=decode"])
    p9 = RolePricer(s9, "decode", s9.deployment.decode)
    assert p9.all_to_all_time("dispatch", 128) > p.all_to_all_time("dispatch", 8)
    assert p9.sources == {"network": 1}
