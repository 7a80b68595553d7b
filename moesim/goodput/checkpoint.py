"""Checkpoint size and the time to write, snapshot and reload it.

Bytes: every parameter (MTP modules included) times the bytes of what is saved, from the
memory model's per-parameter state bytes (``moesim.memory.params.bytes_per_param``): the
weights in ``param_dtype`` and the optimizer states (fp32 master copy, Adam moments in their
dtype); gradients are never saved.

Writing: with ``sharded`` every rank writes its shard, so the job's hosts split the bytes;
otherwise one data-parallel replica (devices / DP ranks, on as few hosts) writes everything.
The time is the larger of the aggregate limit (bytes / storage bandwidth) and the per-host
limit (its bytes / host bandwidth). Reloading reads the shards the same way; without sharding
every replica reads the whole state. Asynchronous saving blocks only for the device-to-host
copy of each rank's share; the write then overlaps training, so checkpoints cannot come more
often than one write.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from moesim.memory.params import bytes_per_param
from moesim.specs.goodput import CheckpointSpec
from moesim.specs.scenario import ScenarioSpec


@dataclass(frozen=True)
class CheckpointCost:
    """Seconds and bytes of one checkpoint of the job."""

    bytes: float
    write_s: float  # until the whole checkpoint is on storage
    blocking_s: float  # training stopped per checkpoint (write_s, or the snapshot if async)
    reload_s: float  # reading it back after a failure
    writer_hosts: int


def checkpoint_bytes(scenario: ScenarioSpec, spec: CheckpointSpec) -> float:
    """Bytes of one checkpoint: parameters x (weight bytes + optimizer-state bytes) saved."""
    per = bytes_per_param(scenario)
    each = (per.weights if spec.save_weights else 0.0) + (
        per.optimizer if spec.save_optimizer_states else 0.0)
    return float(scenario.model_spec.total_params_with_mtp) * each


def checkpoint_cost(scenario: ScenarioSpec, spec: CheckpointSpec, devices: int,
                    devices_per_host: int) -> CheckpointCost:
    """Write, blocking and reload seconds of one checkpoint on ``devices`` devices."""
    total = checkpoint_bytes(scenario, spec)
    hosts = max(1, math.ceil(devices / devices_per_host))
    dp = max(1, scenario.parallelism.data_parallel_degree(devices))
    writers = devices if spec.sharded else max(1, devices // dp)
    writer_hosts = max(1, min(hosts, math.ceil(writers / devices_per_host)))

    def moved(nbytes: float, n_hosts: int, which: str) -> float:
        return max(nbytes / spec.bytes_per_s(f"aggregate_{which}"),
                   nbytes / n_hosts / spec.bytes_per_s(f"host_{which}"))

    write = moved(total, writer_hosts, "write")
    reload = moved(total if spec.sharded else total * dp, hosts, "read")
    blocking = write
    if spec.async_save:
        blocking = total / writers / spec.bytes_per_s("snapshot")
    return CheckpointCost(bytes=total, write_s=write, blocking_s=blocking, reload_s=reload,
                          writer_hosts=writer_hosts)
