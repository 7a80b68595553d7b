"""Bytes each named link carries in one step, from the communication the engine priced.

The network model returns, for every flow-priced collective and all-to-all, the bytes it puts
on each link. A step runs each communication shape a known number of times (the same counts
the DES walks: every forward and backward action of the stage's schedule runs its chunk's
ops once for its micro-batch; gradient buckets and optimizer parameter gathers run once per
chunk per step), so the step's bytes per link are the sum over shapes of count x bytes.

Stages are symmetric (see :mod:`moesim.engine.binding`), so the links of one rank class,
stage 0 (the first one priced, whose all-to-alls are priced on its own groups), stand for
every stage's. Pipeline point-to-point sends are not counted: the network prices them in
closed form, without a link load. The analytic fidelity's network model gives no link
loads, so only the DES result carries links.

An all-to-all is priced on the mean traffic matrix over MoE layers and routing draws, so
count x the mean matrix's link bytes is the sum of every run's bytes when the layers and
micro-batches sample the draws evenly (exact under balanced routing).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from moesim.engine.pricing import Pricer
from moesim.program.builder import ChunkProgram, StepProgram
from moesim.program.ops import AllToAllShape, CollectiveShape, Op


@dataclass(frozen=True)
class LinkLoad:
    """One link's step total: ``bytes`` (B) through a link of ``capacity_bytes_per_s``."""

    link: str
    tier: str
    capacity_bytes_per_s: float
    bytes: float


def _comm(ops: Iterable[Op]) -> list[Op]:
    return [op for op in ops if isinstance(op.shape, (CollectiveShape, AllToAllShape))]


def _forward_ops(chunk: ChunkProgram) -> list[Op]:
    return _comm(chunk.forward) + _comm(chunk.param_regather)


def _backward_ops(chunk: ChunkProgram) -> list[Op]:
    return (_comm(chunk.recompute) + _comm(chunk.backward_input)
            + _comm(chunk.backward_weight) + _comm(chunk.param_regather))


def step_op_counts(program: StepProgram, stage: int) -> Counter[Op]:
    """How many times each communication op of ``stage`` runs in one step."""
    ctx, st = program.context, program.stages[stage]
    counts: Counter[Op] = Counter()
    if program.schedule == "dualpipe":
        # A DualPipe rank runs F, B and W of its two chunks alternately, one per micro-batch.
        chunks = [stage, ctx.pp - 1 - stage]
        runs = [program.chunks[chunks[i % 2]] for i in range(ctx.num_micro_batches)]
        for ch in runs:
            counts.update(_forward_ops(ch) + _backward_ops(ch))
        owned = sorted(set(chunks))
    else:
        for action in st.actions:
            ch = program.chunks[action.virtual * ctx.pp + stage]
            counts.update(_forward_ops(ch) if action.phase == "F" else _backward_ops(ch))
        owned = list(st.chunks)
    for c in owned:
        counts.update(_comm(program.chunks[c].grad_sync) + _comm(program.chunks[c].param_gather))
    counts.update(_comm(st.optimizer))
    return counts


def _op_link_bytes(pricer: Pricer, op: Op, stage: int) -> dict[str, float]:
    costs = pricer.costs
    shape = op.shape
    if isinstance(shape, CollectiveShape):
        get = getattr(costs, "collective_link_bytes", None)
        return get(shape, stage) if get is not None else {}
    get = getattr(costs, "all_to_all_link_bytes", None)
    if get is None:
        return {}
    mean, node = pricer.a2a_traffic(shape.direction)
    if mean.shape[-1] <= 1:
        return {}
    return get(mean, stage, node)


def step_link_loads(program: StepProgram, pricer: Pricer, stage: int = 0) -> list[LinkLoad]:
    """Bytes per link of one step of rank class ``stage`` (links carrying none are left out).

    Empty when the cost provider gives no link loads (test fakes, the analytic fidelity).
    """
    table = getattr(pricer.costs, "link_table", None)
    if table is None or not program.stages:
        return []
    totals: dict[str, float] = {}
    for op, n in step_op_counts(program, stage).items():
        for link, b in _op_link_bytes(pricer, op, stage).items():
            totals[link] = totals.get(link, 0.0) + n * b
    if not totals:
        return []
    names, tiers, caps = table()
    index = {name: i for i, name in enumerate(names)}
    cap = np.asarray(caps, dtype=np.float64)
    return [LinkLoad(link, tiers[index[link]], float(cap[index[link]]), b)
            for link, b in sorted(totals.items()) if b > 0]
