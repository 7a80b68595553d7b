"""What a trace record says about its op besides name and time: shape, bytes, group, source.

One mapping per op (built once when a phase is priced, shared by every micro-batch's record);
the report writes it as the event's ``args`` in trace.json. ``source`` is the path that priced
the op: measured, derived, roofline (compute, :meth:`Pricer.source`) or network (communication).
"""

from __future__ import annotations

from moesim.program.ops import (
    AllToAllShape,
    AttentionShape,
    CollectiveShape,
    GemmShape,
    GroupedGemmShape,
    GroupedMemoryShape,
    MemoryShape,
    Op,
    SendShape,
)

Args = dict[str, str | int | float]


def op_args(op: Op, source: str = "") -> Args:
    """The trace args of ``op``; ``source`` for a compute op (communication is "network")."""
    s = op.shape
    out: Args = {"source": source or ("network" if not op.is_compute else "model")}
    if isinstance(s, GemmShape):
        out |= {"shape": f"{s.m}x{s.n}x{s.k}" + (f" x{s.batch}" if s.batch > 1 else ""),
                "flop": s.flops}
    elif isinstance(s, GroupedGemmShape):
        out |= {"shape": f"routed tokens x{s.n}x{s.k}" + (" (wgrad)" if s.transpose else ""),
                "moe_layer": s.moe_layer, "group": "ep"}
    elif isinstance(s, AttentionShape):
        out |= {"shape": f"b{s.batch} q{s.seq_q} kv{s.seq_kv} h{s.num_heads}/{s.num_kv_heads} "
                         f"d{s.head_dim}" + (f" window{s.window}" if s.window else ""),
                "causal": int(s.causal), "backward": int(s.backward)}
    elif isinstance(s, MemoryShape):
        out |= {"bytes": s.bytes_moved, "memory_op": s.kind}
    elif isinstance(s, GroupedMemoryShape):
        out |= {"bytes_per_routed_token": s.bytes_per_row, "moe_layer": s.moe_layer,
                "memory_op": s.kind}
    elif isinstance(s, CollectiveShape):
        out |= {"collective": s.op, "group": s.axis, "bytes": s.size_bytes}
    elif isinstance(s, AllToAllShape):
        out |= {"collective": f"all_to_all ({s.direction})", "group": "ep",
                "moe_layer": s.moe_layer}
    elif isinstance(s, SendShape):
        out |= {"collective": f"send to the {s.direction} stage", "group": "pp",
                "bytes": s.size_bytes}
    return out


def merged_args(first: Args, other_name: str, ops: int) -> Args:
    """Args of a step that fuses ``ops`` ops (an overlap): the first op's, plus what joined."""
    return {**first, "fused_with": other_name, "ops": ops}
