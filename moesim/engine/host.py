"""The host side of a step: the CPU issues every op, runs ahead of the device, and blocks at
real synchronization points.

A framework step is a Python program that launches kernels one after another; the device
runs them in order. While kernels are long the host runs ahead and its time is hidden; when
they are short (small hidden sizes, micro-batch 1) the device waits for the host. The host
cannot run past a point where it needs a value from the device:

- the dropless MoE token dispatcher: Megatron-Core's all-to-all dispatcher copies the split
  sizes to the host and synchronizes "before_ep_alltoall" unless the input is padded to
  capacity (`moe_pad_expert_input_to_capacity`: static sizes, "no_sync"); DeepEP's normal
  dispatch returns the received-token counts as a host list (the CPU waits for the notify
  kernel); HybridEP sizes its buffers with a CPU sync unless it is given a static budget
  (megatron/core/transformer/moe/token_dispatcher.py, fused_a2a.py). Backward passes reuse
  the saved splits and do not synchronize;
- a pipeline receive: with `batch_p2p_comm` (the default) Megatron calls
  `torch.cuda.synchronize()` after every batched send/receive (p2p_communication.py);
- the optimizer step (the gradient norm and the found-inf check are read on the host).

So every phase (a chunk's forward or backward of one micro-batch) starts with host and device
together, and inside a phase: host h and device d start at t0; for each op h += issue time,
the op starts at max(d, h) and ends at start + kernel; at a sync point h = max(h, d) before
the op is issued. The device's idle time waiting for the host is reported as ``host``.

CUDA graphs remove the issue cost of what they capture: a captured region is one launch.
Scopes follow Megatron-Core's `cuda_graph_modules` (TransformerLayer._forward_attention =
"attn", the dense MLP = "mlp", the whole MoE MLP = "moe", the MoE MLP up to the router =
"moe_router", MoELayer.preprocess = "moe_preprocess"), and `full_iteration` captures the
whole forward-backward path (cuda_graph_impl="full_iteration"; megatron/core/transformer/
transformer_config.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from moesim.program.ops import AllToAllShape, Op, op_module
from moesim.specs.scenario import ScenarioSpec
from moesim.units import US

# Host time to issue one modeled op (a Transformer Engine linear, an attention call, a norm,
# a collective): the Python module call, autograd bookkeeping and the launches of the few
# framework kernels one modeled op stands for. FITTED over the published training cases
# jointly with SUSTAINED_COMPUTE_EFFICIENCY (docs/engine.md, "Calibration";
# benchmarks/fit_sustained_efficiency.py prints the fit and its leave-one-out errors).
HOST_OP_S = 214e-6


@dataclass(frozen=True)
class HostModel:
    """Issue time per op (seconds), the CUDA-graph scopes and where the host synchronizes."""

    op_s: float
    graphed: frozenset[str] = frozenset()
    sync_at_dispatch: bool = True

    def captured(self, op: Op) -> bool:
        """Whether ``op`` is replayed from a CUDA graph (no per-op issue cost)."""
        if not self.graphed:
            return False
        mod = op_module(op)
        if "full_iteration" in self.graphed:
            return mod != "optimizer"
        if mod in self.graphed:
            return True
        # "moe" captures the whole MoE MLP, router and preprocessing included.
        return mod in ("moe_router", "moe_preprocess") and "moe" in self.graphed

    def syncs_before(self, op: Op) -> bool:
        """Whether the host waits for the device before issuing ``op`` (forward dispatch)."""
        s = op.shape
        return (self.sync_at_dispatch and isinstance(s, AllToAllShape)
                and s.direction == "dispatch" and not op.name.endswith(".bwd"))


def host_model(scenario: ScenarioSpec, op_s: float | None = None) -> HostModel:
    """The scenario's host: its own ``workload.host_op_us``, else HOST_OP_S on GPUs (frameworks
    issue ops one by one) and 0 on TPUs (XLA compiles the step and launches it once)."""
    wl, rt = scenario.workload, scenario.routing
    if op_s is None:
        if wl.host_op_us is not None:
            op_s = wl.host_op_us * US
        else:
            vendor = scenario.topology_spec.accelerator.vendor
            op_s = HOST_OP_S if vendor in ("nvidia", "amd") else 0.0
    # Padded to capacity the dispatch sizes are static (no host sync); otherwise they come
    # from the router's output on the device.
    static = rt.capacity_factor is not None and rt.pad_to_capacity
    return HostModel(op_s=float(op_s), graphed=frozenset(wl.cuda_graph_modules),
                     sync_at_dispatch=not static)


def host_runs_ahead(schedule: str, pp: int, num_virtual: int) -> bool:
    """Whether the host keeps issuing across phase boundaries instead of waiting for the device.

    Megatron-Core's non-interleaved pipeline schedule exchanges activations with
    ``batch_isend_irecv`` followed by ``torch.cuda.synchronize()`` (p2p_communication.py:
    ``batch_p2p_comm`` and ``batch_p2p_sync`` default true), so with PP > 1 each phase starts
    synced. The interleaved schedule overlaps its sends and receives (``overlap_p2p_comm``,
    on by default, turns ``batch_p2p_comm`` off: training/argument_utils.py) and waits for
    them on the stream, and PP 1 exchanges nothing: there the host runs ahead. DualPipe's
    phases start synced (its own schedule)."""
    if schedule == "dualpipe":
        return False
    return pp == 1 or (schedule == "interleaved_1f1b" and num_virtual > 1)
