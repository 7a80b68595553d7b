"""Routing's closed form for expected balanced routing (the analytic fidelity's input)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from moesim.routing import closed_form_applies, expected_balanced_routing, tokens_per_source_rank
from moesim.specs.loader import load_scenario

MIXTRAL = Path(__file__).resolve().parents[3] / "scenarios" / "mixtral-8x7b-64xh100.yaml"


def test_balanced_rows_conserve_copies_and_receivers_get_their_share():
    s = load_scenario(MIXTRAL)
    r = expected_balanced_routing(s)
    t, k, ep = tokens_per_source_rank(s), s.model_spec.top_k, 8
    # Each source sends its T x k copies (4096 x 2), T x k / EP to every rank.
    np.testing.assert_allclose(r.traffic_tokens.sum(axis=-1), t * k)
    np.testing.assert_allclose(r.traffic_tokens, t * k / ep)
    # One expert per rank receives every source's T k / E: 8 x 4096 x 2 / 8 = 8192 tokens.
    np.testing.assert_allclose(r.recv_tokens_per_expert, 8192.0)
    # Distinct tokens per rank pair: T (1 - (1 - k/E)^1) = 4096 x 2/8 = 1024 (one expert each).
    np.testing.assert_allclose(r.distinct_tokens, 1024.0)
    assert r.traffic_tokens.shape == (32, ep, ep)


def test_closed_form_only_where_it_is_exact():
    assert not closed_form_applies(load_scenario(MIXTRAL, ["routing.load.kind=multinomial"]))
    s = load_scenario(MIXTRAL, ["routing.capacity_factor=0.5"])
    assert not closed_form_applies(s)
    with pytest.raises(AssertionError):
        expected_balanced_routing(s)
