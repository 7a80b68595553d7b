"""Checkpoint bytes from the memory model's state bytes; write and reload time limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from moesim.goodput import checkpoint_bytes, checkpoint_cost, load_goodput
from moesim.specs.loader import load_scenario

ROOT = Path(__file__).resolve().parents[3]
DSV3 = ROOT / "scenarios" / "deepseek-v3-2048xh800.yaml"


def test_dsv3_checkpoint_bytes_by_hand() -> None:
    s = load_scenario(DSV3)
    spec = load_goodput("H800-SXM").checkpoint
    # bf16 weights 2 B + fp32 master 4 B + two bf16 Adam moments 2 x 2 B = 10 B per parameter
    # (DSV3 §3.3.3), over 671B + the MTP module's parameters.
    params = s.model_spec.total_params_with_mtp
    assert checkpoint_bytes(s, spec) == pytest.approx(10.0 * params)
    assert 6.8e12 < checkpoint_bytes(s, spec) < 6.9e12
    weights_only = spec.model_copy(update={"save_optimizer_states": False})
    assert checkpoint_bytes(s, weights_only) == pytest.approx(2.0 * params)


def test_write_time_is_the_tighter_of_aggregate_and_host_bandwidth() -> None:
    s = load_scenario(DSV3)
    spec = load_goodput("H800-SXM").checkpoint
    total = checkpoint_bytes(s, spec)
    ck = checkpoint_cost(s, spec, 2048, 8)
    # 256 hosts at 100 GB/s = 25.6 TB/s > the 2 TB/s storage: the aggregate limit binds.
    assert ck.write_s == pytest.approx(total / 2e12) and ck.blocking_s == ck.write_s
    few = checkpoint_cost(s, spec, 16, 8)  # 2 hosts x 100 GB/s = 200 GB/s binds
    assert few.write_s == pytest.approx(total / 2 / 100e9)


def test_unsharded_writes_from_one_replica_and_reads_into_every_one() -> None:
    s = load_scenario(DSV3)
    spec = load_goodput("H800-SXM").checkpoint.model_copy(update={"sharded": False})
    ck = checkpoint_cost(s, spec, 2048, 8)
    sharded = checkpoint_cost(s, spec.model_copy(update={"sharded": True}), 2048, 8)
    assert ck.writer_hosts < sharded.writer_hosts and ck.write_s >= sharded.write_s
    assert ck.reload_s > sharded.reload_s


def test_async_blocks_only_for_the_snapshot() -> None:
    s = load_scenario(DSV3)
    spec = load_goodput("H800-SXM").checkpoint.model_copy(update={"async_save": True})
    ck = checkpoint_cost(s, spec, 2048, 8)
    assert ck.blocking_s == pytest.approx(checkpoint_bytes(s, spec) / 2048 / 50e9)
    assert ck.blocking_s < ck.write_s
