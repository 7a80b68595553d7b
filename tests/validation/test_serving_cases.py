"""Published serving measurements through moesim's serving path, within the issue's bands:
SGLang's DeepSeek-V3 PD + EP throughput per node within 15% (prefill 1K/2K/4K, decode batch
256) and DeepEP's low-latency latencies within 15% at every EP size through the decode path."""

from __future__ import annotations

from pathlib import Path

import pytest

from moesim.check import run_check

PUBLISHED = Path(__file__).resolve().parents[2] / "scenarios" / "published"


@pytest.fixture(scope="module")
def rows():
    report = run_check([PUBLISHED / "sglang-dsv3-96xh100-pd-ep.yaml",
                        PUBLISHED / "deepep-v1-lowlatency-h800-decode-path.yaml"])
    assert not report.failed, report.failed
    return report.rows


def test_sglang_prefill_and_decode_per_node_within_15_percent(rows):
    sglang = [r for r in rows if r.case == "sglang-dsv3-96xh100-pd-ep"]
    assert {r.label for r in sglang} == {"prefill 1K", "prefill 2K", "prefill 4K",
                                         "decode batch 256"}
    for r in sglang:
        assert abs(r.error_pct) < 15.0, (r.label, r.published, r.predicted)
    # Longer prompts cost more attention per token: throughput falls from 1K to 4K, as measured.
    by = {r.label: r.predicted for r in sglang}
    assert by["prefill 1K"] > by["prefill 2K"] > by["prefill 4K"]


def test_deepep_low_latency_through_the_decode_path_within_15_percent(rows):
    ll = [r for r in rows if r.case == "deepep-v1-lowlatency-h800-decode-path"]
    assert len(ll) == 12
    for r in ll:
        assert abs(r.error_pct) < 15.0, (r.label, r.published, r.predicted)
