"""Megatron-Core's 1F1B all-to-all overlap, layer by layer, on a compute and a communication stream.

With ``overlap_moe_expert_parallel_comm`` Megatron-Core runs a forward micro-batch and a
backward micro-batch of another together, layer by layer: forward layer i beside the backward
of the last layer not yet run backward (megatron/core/models/common/
model_chunk_schedule_plan.py, ``TransformerModelChunkSchedulePlan.run``). Each layer is split
into four nodes (megatron/core/models/gpt/fine_grained_callables.py):

- ``pre_dispatch`` (compute stream): attention, the pre-MLP norm, the shared experts, the
  router and the dispatch preprocessing (permutation);
- ``dispatch`` (communication stream): the all-to-all;
- ``mlp`` (compute stream): the routed experts; its backward also computes their weight
  gradients (``backward_dw``) before the backward dispatch;
- ``combine`` (communication stream): the all-to-all, the unpermutation and the residual add.

and one layer pair runs (``TransformerLayerSchedulePlan.run``)::

    comm stream:  combine_bwd       | dispatch_fwd -> dispatch_bwd      | combine_fwd
    comp stream:  pre_dispatch_fwd  | mlp_bwd -> mlp_bwd_dw -> mlp_fwd  | pre_dispatch_bwd

each node starting when its stream is free and its input is ready (the backward mlp needs
the backward combine, the forward dispatch the forward pre_dispatch, and so on). A pair
therefore takes the critical path of this two-stream graph, not the larger of its compute and
its communication: the compute stream idles while the backward dispatch it waits for runs.

The host issues the nodes in that order, one op at a time (``Step.host``); a dispatch that
reads token counts back (``Step.sync``, the dropless dispatcher) holds the host until its input
is ready on the device. Communication kernels take their SMs from the compute that runs beside
them (:mod:`moesim.engine.overlap`): the pair is longer by f times the time compute and
communication overlap.

Layers with no all-to-all (dense layers, a chunked MoE block already overlapped in place) are
pure compute-stream nodes, and steps outside transformer layers (embedding, LM head, loss, a
parameter gather) run before the pair, as they do in Megatron (pre/post-process nodes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

_LAYER = re.compile(r"^L\d+$")
_EP_KINDS = ("ep_dispatch", "ep_combine")


@dataclass
class Node:
    """One node of a layer: [M] seconds, host issue seconds, whether the host syncs first."""

    dur: np.ndarray
    host: float = 0.0
    sync: bool = False


@dataclass
class LayerNodes:
    """A layer's four nodes in the order of its phase.

    Forward: pre (compute), first = dispatch (comm), mid = mlp (compute), second = combine and
    the unpermutation after it (comm). Backward: first = the unpermutation's and the combine's
    backward (comm), mid = the experts' input and weight gradients (compute), second = the
    dispatch's backward (comm), pre = everything else (compute: attention backward, router,
    shared experts, norms and the recompute of attention parts)."""

    key: str
    pre: Node
    first: Node
    mid: Node
    second: Node


@dataclass
class PhaseNodes:
    """A phase cut for pairing: transformer layers in phase order and the rest as one node."""

    layers: list[LayerNodes]
    other: Node


def _is_exchange(step) -> bool:  # noqa: ANN001
    """An EP all-to-all step, alone or merged with the compute overlapped beside it."""
    if not step.compute:
        return step.kind in _EP_KINDS or step.stream == "comm_ep"
    return step.exposed is not None and step.comm_kind in _EP_KINDS and "+overlap" not in step.name


def _node(steps: list, m: int) -> Node:
    dur = np.zeros(m)
    for s in steps:
        dur = dur + s.slow
    return Node(dur, float(sum(s.host for s in steps)), any(s.sync for s in steps))


def _layer_nodes(key: str, steps: list, forward: bool, m: int) -> LayerNodes:
    """The four nodes of one layer's steps (module docstring)."""
    rec = [s for s in steps if s.name.endswith(".recompute")]
    main = [s for s in steps if not s.name.endswith(".recompute")]
    runs: list[list[int]] = []
    for i, s in enumerate(main):
        if _is_exchange(s):
            if runs and runs[-1][-1] == i - 1:
                runs[-1].append(i)
            else:
                runs.append([i])
    empty = _node([], m)
    if len(runs) != 2:  # a dense layer, or one whose exchanges are already overlapped in place
        return LayerNodes(key, _node(rec + main, m), empty, empty, empty)
    (a0, a1), (b0, b1) = (runs[0][0], runs[0][-1]), (runs[1][0], runs[1][-1])
    before, first, between = main[:a0], main[a0:a1 + 1], main[a1 + 1:b0]
    second, after = main[b0:b1 + 1], main[b1 + 1:]
    shared = [s for s in before + after if ".moe.shared" in s.name]
    if forward:
        pre = rec + before + shared
        post = [s for s in after if ".moe.shared" not in s.name]
        return LayerNodes(key, _node(pre, m), _node(first, m), _node(between, m),
                          _node(second + post, m))
    lead = [s for s in before if ".moe.shared" not in s.name]
    dw = [s for s in after if ".moe.experts" in s.name]
    rest = [s for s in after if ".moe.experts" not in s.name and ".moe.shared" not in s.name]
    rec_mid = [s for s in rec if ".attn." not in s.name]
    rec_pre = [s for s in rec if ".attn." in s.name]
    return LayerNodes(key, _node(rec_pre + shared + rest, m), _node(lead + first, m),
                      _node(rec_mid + between + dw, m), _node(second, m))


def phase_nodes(steps: list, forward: bool) -> PhaseNodes:
    """``steps`` (one phase's priced steps) cut into layer nodes for pairing."""
    m = steps[0].slow.shape[0] if steps else 0
    order: list[str] = []  # layers in the order of their first step that is not a recompute
    by_key: dict[str, list] = {}
    other: list = []
    for s in steps:
        key = s.name.split(".", 1)[0]
        if not _LAYER.match(key):
            other.append(s)
            continue
        by_key.setdefault(key, []).append(s)
        if key not in order and not s.name.endswith(".recompute"):
            order.append(key)
    order += [k for k in by_key if k not in order]
    layers = [_layer_nodes(k, by_key[k], forward, m) for k in order]
    return PhaseNodes(layers, _node(other, m))


def _overlap(a: list[tuple[np.ndarray, np.ndarray]],
             b: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """[M] seconds during which an interval of ``a`` and one of ``b`` both run."""
    tot = np.zeros_like(a[0][0])
    for s1, e1 in a:
        for s2, e2 in b:
            tot = tot + np.maximum(0.0, np.minimum(e1, e2) - np.maximum(s1, s2))
    return tot


@dataclass
class _Clock:
    """Where a pair's two streams, its two data chains and the host stand (seconds, [M])."""

    comp: np.ndarray  # compute stream free
    comm: np.ndarray  # communication stream free
    fwd: np.ndarray  # the forward chain's output ready (the last forward combine)
    bwd: np.ndarray  # the backward chain's gradient ready (the last backward pre_dispatch)
    host: np.ndarray  # host clock
    stall: np.ndarray  # compute-stream time spent waiting for the host to issue


def layer_pair(fl: LayerNodes | None, bl: LayerNodes | None, fi, bi,  # noqa: ANN001
               clock: _Clock) -> np.ndarray:
    """Run forward layer ``fl`` (micro-batch index ``fi``) beside backward layer ``bl``
    (index ``bi``), either possibly absent, from ``clock`` (advanced in place): the
    two-stream schedule of the module docstring in Megatron's host issue order. Returns the
    [M] seconds compute and communication ran at the same time."""
    zero = np.zeros_like(clock.comp)

    def pick(n: Node | None, idx) -> tuple[np.ndarray, float, bool]:  # noqa: ANN001
        return (zero, 0.0, False) if n is None else (n.dur[idx], n.host, n.sync)

    def run(node, comp, *deps):  # noqa: ANN001, ANN202
        dur, host, sync = node
        ready = deps[0]
        for d in deps[1:]:
            ready = np.maximum(ready, d)
        if sync:
            clock.host = np.maximum(clock.host, ready)
        start = np.maximum(ready, clock.host)
        clock.host = clock.host + host
        end = np.maximum(start + dur, clock.host)
        if comp:
            clock.stall = clock.stall + (start - ready) + (end - start - dur)
        return start, end

    s_cb, e_cb = run(pick(bl.first if bl else None, bi), False, clock.comm, clock.bwd)
    s_af, e_af = run(pick(fl.pre if fl else None, fi), True, clock.comp, clock.fwd)
    s_mb, e_mb = run(pick(bl.mid if bl else None, bi), True, e_af, e_cb)
    s_df, e_df = run(pick(fl.first if fl else None, fi), False, e_cb, e_af)
    s_db, e_db = run(pick(bl.second if bl else None, bi), False, e_df, e_mb)
    s_mf, e_mf = run(pick(fl.mid if fl else None, fi), True, e_mb, e_df)
    s_cf, e_cf = run(pick(fl.second if fl else None, fi), False, e_db, e_mf)
    s_ab, e_ab = run(pick(bl.pre if bl else None, bi), True, e_mf, e_db)
    clock.comp, clock.comm = e_ab, e_cf
    clock.fwd = e_cf if fl is not None else clock.fwd
    clock.bwd = e_ab if bl is not None else clock.bwd
    return _overlap([(s_af, e_af), (s_mb, e_mb), (s_mf, e_mf), (s_ab, e_ab)],
                    [(s_cb, e_cb), (s_df, e_df), (s_db, e_db), (s_cf, e_cf)])


def pair_time(fwd: PhaseNodes, bwd: PhaseNodes, fi, bi, f: float,  # noqa: ANN001
              lead: np.ndarray | float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seconds of a forward phase (micro-batch index ``fi``) run merged with a backward phase
    (index ``bi``; both scalars or equal-length index arrays): the non-layer nodes of both,
    then forward layer k beside the k-th backward layer, then the layers left unpaired; the
    host runs ahead across layers. Compute beside communication holding a fraction f of the
    SMs is slower by f times their overlap (:mod:`moesim.engine.overlap`). The host starts
    issuing ``lead`` seconds before the pair can start (it ran ahead). Returns (duration,
    compute-stream seconds spent waiting for the host, the host clock at the end), all from
    the pair's start."""
    t0 = np.asarray(fwd.other.dur[fi] + bwd.other.dur[bi], dtype=np.float64)
    h0 = np.minimum(t0, fwd.other.host + bwd.other.host) - lead
    clock = _Clock(t0, t0, t0, t0, np.asarray(h0, dtype=np.float64), np.zeros_like(t0))
    ov = np.zeros_like(t0)
    for k in range(max(len(fwd.layers), len(bwd.layers))):
        fl = fwd.layers[k] if k < len(fwd.layers) else None
        bl = bwd.layers[k] if k < len(bwd.layers) else None
        ov = ov + layer_pair(fl, bl, fi, bi, clock)
    return np.maximum(clock.comp, clock.comm) + f * ov, clock.stall, clock.host
