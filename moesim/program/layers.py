"""Op lists of transformer layers: forward, input-gradient (B) and weight-gradient (W).

Each forward linear ``Y[m, n] = X[m, k] W[k, n]`` brings a data-gradient GEMM
``dX[m, k] = dY W^T`` (B) and a weight-gradient GEMM ``dW[k, n] = X^T dY`` (W), the split
ZeroBubble and DualPipe schedule separately. Every communication op's backward is its
transpose: all-gather <-> reduce-scatter, dispatch <-> combine.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from moesim.program.context import (
    ProgramContext,
    attention_out_dim,
    attention_projection_dims,
    local_heads,
)
from moesim.program.ops import (
    AllToAllShape,
    AttentionShape,
    CollectiveShape,
    GemmShape,
    GroupedGemmShape,
    GroupedMemoryShape,
    MemoryShape,
    Op,
    comm,
    compute,
)

_TRANSPOSE = {"all_gather": "reduce_scatter", "reduce_scatter": "all_gather",
              "all_reduce": "all_reduce", "all_to_all": "all_to_all"}


@dataclass
class OpLists:
    """The three phases of a chunk, built in forward order; backward lists are reversed later."""

    forward: list[Op] = field(default_factory=list)
    backward_input: list[Op] = field(default_factory=list)
    backward_weight: list[Op] = field(default_factory=list)
    fp8: bool = False  # GEMM operands are cast to FP8 first (Transformer Engine recipes)

    def linear(self, name: str, kind: str, m: int, k: int, n: int) -> None:
        self.cast(name, kind, m * k, m * n)
        self.forward.append(compute(name, kind, GemmShape(m=m, n=n, k=k)))
        self.backward_input.append(compute(f"{name}.dgrad", kind, GemmShape(m=m, n=k, k=n)))
        self.backward_weight.append(compute(f"{name}.wgrad", kind, GemmShape(m=k, n=n, k=m)))

    def cast(self, name: str, kind: str, fwd_elems: float, bwd_elems: float) -> None:
        """FP8 cast-transpose of a GEMM's activation input (forward) and output gradient
        (backward): read BF16 (2 B), write FP8 and its FP8 transpose for the wgrad GEMM
        (1 + 1 B) = 4 B per element, as Transformer Engine's fused cast-transpose kernel does
        (TE docs, "Using FP8 with Transformer Engine": inputs and grads are quantized per
        GEMM; weights once per step, which is negligible and not modelled)."""
        if not self.fp8:
            return
        self.forward.append(compute(f"{name}.fp8_cast", "fp8_cast",
                                    MemoryShape(bytes_moved=4.0 * fwd_elems, kind="cast")))
        self.backward_input.append(compute(f"{name}.fp8_cast.bwd", "fp8_cast",
                                           MemoryShape(bytes_moved=4.0 * bwd_elems, kind="cast")))

    def memory(self, name: str, kind: str, nbytes: float) -> None:
        self.forward.append(compute(name, kind, MemoryShape(bytes_moved=nbytes)))
        self.backward_input.append(compute(f"{name}.bwd", kind, MemoryShape(bytes_moved=nbytes)))

    def collective(self, name: str, kind: str, op: str, axis: str, nbytes: float) -> None:
        stream = "comm_tp" if axis in ("tp", "etp") else "comm_cp"
        self.forward.append(comm(name, kind, stream, CollectiveShape(op, axis, nbytes)))  # type: ignore[arg-type]
        self.backward_input.append(comm(
            f"{name}.bwd", kind, stream, CollectiveShape(_TRANSPOSE[op], axis, nbytes)))  # type: ignore[arg-type]


def norm_bytes(ctx: ProgramContext, tokens: int) -> float:
    """RMSNorm/LayerNorm reads and writes one hidden-state tensor."""
    return 2.0 * ctx.activation_bytes(tokens)


def attention_block(ops: OpLists, ctx: ProgramContext, layer: int) -> None:
    """Norm, (TP all-gather), projections, (CP KV exchange), attention, out proj, (TP RS)."""
    p, t, tsp = f"L{layer}.attn", ctx.tokens, ctx.tokens_sp
    ops.memory(f"{p}.norm", "norm", norm_bytes(ctx, tsp))
    if ctx.tp > 1:
        ops.collective(f"{p}.tp_ag", "tp", "all_gather", "tp", ctx.activation_bytes(t))
    for name, k, n in attention_projection_dims(ctx):
        ops.linear(f"{p}.{name}", "attention", t, k, n)
    att = ctx.model.attention
    heads, kv = local_heads(ctx)
    ulysses = ctx.cp > 1 and ctx.parallelism.cp_comm_type == "a2a"
    if ulysses:
        # Ulysses: an all-to-all trades the sequence split for a head split before the
        # attention core (q, k, v) and back after it (the output).
        qkv = t * (heads + 2 * kv) * att.head_dim * ctx.act_bytes
        ops.collective(f"{p}.cp_a2a", "cp", "all_to_all", "cp", qkv)
    elif ctx.cp > 1:
        # Ring (p2p) or all-gather context parallelism: each rank needs every CP peer's K
        # and V (the ring exchanges them chunk by chunk beside the attention, the engine's
        # overlap; all_gather gathers them first).
        kv_bytes = 2.0 * t * kv * att.head_dim * ctx.act_bytes * ctx.cp
        ops.collective(f"{p}.cp_kv", "cp", "all_gather", "cp", kv_bytes)
    seq_q = ctx.seq_local * ctx.cp if ulysses else ctx.seq_local
    hq, hkv = (max(1, heads // ctx.cp), max(1, kv // ctx.cp)) if ulysses else (heads, kv)
    fwd = AttentionShape(batch=ctx.micro_batch_size, seq_q=seq_q,
                         seq_kv=ctx.seq_local * ctx.cp, num_heads=hq, num_kv_heads=hkv,
                         head_dim=att.head_dim, causal=ctx.causal,
                         head_dim_v=getattr(att, "v_head_dim", None),
                         window=ctx.model.attention_window(layer))
    core = compute(f"{p}.core", "attention", fwd)
    ops.forward.append(core)
    ops.backward_input.append(compute(f"{p}.core.bwd", "attention", _backward(fwd)))
    if ulysses:
        out = t * heads * att.head_dim * ctx.act_bytes
        ops.collective(f"{p}.cp_a2a_out", "cp", "all_to_all", "cp", out)
    ops.linear(f"{p}.out_proj", "attention", t, attention_out_dim(ctx), ctx.hidden)
    if ctx.tp > 1:
        ops.collective(f"{p}.tp_rs", "tp", "reduce_scatter", "tp", ctx.activation_bytes(t))
    ops.memory(f"{p}.residual", "elementwise", 3.0 * ctx.activation_bytes(tsp))


def _backward(shape: AttentionShape) -> AttentionShape:
    return replace(shape, backward=True)


def _ffn(ops: OpLists, ctx: ProgramContext, p: str, kind: str, tokens: int, width: int) -> None:
    """fc1 (gate and up fused when gated), activation, fc2 on one rank."""
    gate = 2 if ctx.model.gated else 1
    ops.linear(f"{p}.fc1", kind, tokens, ctx.hidden, gate * width)
    ops.memory(f"{p}.act", kind, (gate + 1) * tokens * width * ctx.act_bytes)
    ops.linear(f"{p}.fc2", kind, tokens, width, ctx.hidden)


def dense_mlp_block(ops: OpLists, ctx: ProgramContext, layer: int) -> None:
    """Norm, (TP AG), the dense FFN with its width split over TP, (TP RS)."""
    p, t = f"L{layer}.mlp", ctx.tokens
    ops.memory(f"{p}.norm", "norm", norm_bytes(ctx, ctx.tokens_sp))
    if ctx.tp > 1:
        ops.collective(f"{p}.tp_ag", "tp", "all_gather", "tp", ctx.activation_bytes(t))
    _ffn(ops, ctx, p, "dense_mlp", t, max(1, ctx.model.ffn_hidden_size // ctx.tp))
    if ctx.tp > 1:
        ops.collective(f"{p}.tp_rs", "tp", "reduce_scatter", "tp", ctx.activation_bytes(t))


def _grouped(ops: OpLists, p: str, moe: int, k: int, n: int) -> None:
    if ops.fp8:  # cast-transpose of the routed activations (forward) and gradients (backward)
        ops.forward.append(compute(f"{p}.fp8_cast", "fp8_cast",
                                   GroupedMemoryShape(moe, 4.0 * k, "cast")))
        ops.backward_input.append(compute(f"{p}.fp8_cast.bwd", "fp8_cast",
                                          GroupedMemoryShape(moe, 4.0 * n, "cast")))
    ops.forward.append(compute(p, "experts", GroupedGemmShape(moe, n=n, k=k)))
    ops.backward_input.append(compute(f"{p}.dgrad", "experts", GroupedGemmShape(moe, n=k, k=n)))
    ops.backward_weight.append(compute(
        f"{p}.wgrad", "experts", GroupedGemmShape(moe, n=n, k=k, transpose=True)))


def moe_block(ops: OpLists, ctx: ProgramContext, layer: int, moe_index: int) -> None:
    """Router, permute, dispatch, expert grouped GEMMs, combine, unpermute, shared experts.

    ``moe_index`` is the layer's position among the model's MoE layers (the routing draws
    are indexed by it). Tokens per rank are the sequence-parallel shard (MoE parallel folding).
    """
    m, p, t = ctx.model, f"L{layer}.moe", ctx.tokens_sp
    ops.memory(f"{p}.norm", "norm", norm_bytes(ctx, t))
    ops.linear(f"{p}.router", "router", t, ctx.hidden, m.num_experts)
    routed_bytes = t * m.top_k * ctx.hidden * ctx.act_bytes
    ops.memory(f"{p}.permute", "permute", 2.0 * routed_bytes)
    a2a_d = comm(f"{p}.dispatch", "ep_dispatch", "comm_ep", AllToAllShape(moe_index, "dispatch"))
    a2a_c = comm(f"{p}.combine", "ep_combine", "comm_ep", AllToAllShape(moe_index, "combine"))
    ops.forward.append(a2a_d)
    # Backward of dispatch sends gradients back along the combine direction and vice versa.
    if ctx.etp > 1:
        ops.collective(f"{p}.etp_ag", "tp", "all_gather", "etp", ctx.etp * routed_bytes)
    gate = 2 if m.gated else 1
    width = max(1, m.expert_ffn_hidden_size // ctx.etp)
    _grouped(ops, f"{p}.experts_fc1", moe_index, ctx.hidden, gate * width)
    act = GroupedMemoryShape(moe_index, (gate + 1) * width * ctx.act_bytes, "activation")
    ops.forward.append(compute(f"{p}.experts_act", "experts", act))
    ops.backward_input.append(compute(f"{p}.experts_act.bwd", "experts", act))
    _grouped(ops, f"{p}.experts_fc2", moe_index, width, ctx.hidden)
    if ctx.etp > 1:
        ops.collective(f"{p}.etp_rs", "tp", "reduce_scatter", "etp", ctx.etp * routed_bytes)
    ops.forward.append(a2a_c)
    ops.backward_input.append(_flip(a2a_c))
    ops.backward_input.insert(_index_of_dispatch_slot(ops), _flip(a2a_d))
    ops.memory(f"{p}.unpermute", "permute", 2.0 * routed_bytes)
    if m.num_shared_experts:
        if ctx.tp > 1:
            ops.collective(f"{p}.shared_tp_ag", "tp", "all_gather", "tp",
                           ctx.activation_bytes(ctx.tokens))
        shared_width = max(1, m.num_shared_experts * m.shared_ffn_hidden // ctx.tp)
        _ffn(ops, ctx, f"{p}.shared", "shared_experts", ctx.tokens, shared_width)
        if ctx.tp > 1:
            ops.collective(f"{p}.shared_tp_rs", "tp", "reduce_scatter", "tp",
                           ctx.activation_bytes(ctx.tokens))


def _flip(op: Op) -> Op:
    shape = op.shape
    assert isinstance(shape, AllToAllShape)
    other = "combine" if shape.direction == "dispatch" else "dispatch"
    kind = "ep_combine" if other == "combine" else "ep_dispatch"
    return comm(f"{op.name}.bwd", kind, "comm_ep", AllToAllShape(shape.moe_layer, other))


def _index_of_dispatch_slot(ops: OpLists) -> int:
    """Position in the (forward-ordered) B list where dispatch's backward belongs.

    The B list is reversed after the layer is built; dispatch's transpose must come right
    after the expert fc1 data-gradient in backward order, i.e. just before it here.
    """
    for i in range(len(ops.backward_input) - 1, -1, -1):
        if ops.backward_input[i].name.endswith("experts_fc1.dgrad"):
            return i
    return len(ops.backward_input)
