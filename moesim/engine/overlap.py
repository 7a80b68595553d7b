"""Communication that runs beside compute: the SMs its kernels take, and what a pair costs.

NCCL and DeepEP move data with kernels that occupy streaming multiprocessors for as long as
they run, so compute overlapped with them advances on the remaining SMs. The share a
communication kernel takes is its CTA count over the accelerator's SMs:

- NCCL launches one CTA per channel. On an 8-GPU Hopper NVSwitch node NCCL's topology
  search settles on 16 channels for collectives and 16 for point-to-point ("16 coll
  channels, 0 nvls channels, 16 p2p channels, 16 p2p channels per peer" in the init log of
  an 8x H800 node, NVIDIA/nccl issue 892), and NVLS needs no more than 16 (NCCL's source
  comment quoted in NVIDIA/nccl issue 1041): NCCL_CHANNELS = 16 for every NCCL kernel
  (gradient reduce-scatters, parameter all-gathers, pipeline sends, NCCL all-to-all);
- DeepEP's normal kernels take the SMs the scenario gives them
  (``all_to_all.num_sms``; DeepSeek-V3 section 3.2.2: 20 of the H800's 132).

A compute ``work`` overlapped with communication ``comm`` holding a fraction f of the SMs
takes ``work + f comm`` while compute is the longer (its SMs are shared for the length of
the communication), else the communication's length or compute at (1 - f) of the machine,
whichever is longer (:func:`overlapped_pair`).
"""

from __future__ import annotations

import numpy as np

from moesim.specs.parallelism import ParallelismSpec

# CTAs (= SMs) of one NCCL kernel on a Hopper NVSwitch node (module docstring: nccl#892, #1041).
NCCL_CHANNELS = 16
# No communication kernel is given more than this share of the SMs (DeepEP's guidance keeps
# most SMs for compute; the cap only guards absurd inputs).
MAX_COMM_SM_FRACTION = 0.9


def sm_fraction(ctas: int | None, num_sms: int | None) -> float:
    """Share of the accelerator's SMs ``ctas`` CTAs take (0 when either is unknown)."""
    if not ctas or not num_sms:
        return 0.0
    return min(MAX_COMM_SM_FRACTION, ctas / num_sms)


def nccl_fraction(num_sms: int | None) -> float:
    """SM share of one NCCL collective or point-to-point kernel."""
    return sm_fraction(NCCL_CHANNELS, num_sms)


def ep_fraction(parallelism: ParallelismSpec, num_sms: int | None) -> float:
    """SM share of the EP dispatch / combine kernels: DeepEP's ``num_sms``, else NCCL's."""
    a2a = parallelism.all_to_all
    ctas = getattr(a2a, "num_sms", None) or NCCL_CHANNELS
    return sm_fraction(ctas, num_sms)


def overlapped_pair(work: np.ndarray, comm: np.ndarray, f: float) -> np.ndarray:
    """Duration of compute ``work`` overlapped with ``comm`` that holds a fraction f of SMs."""
    if f <= 0:
        return np.maximum(work, comm)
    slow = np.maximum(comm, work / (1.0 - f))
    return np.where(work >= (1.0 - f) * comm, work + f * comm, slow)


def busy_overlap(intervals: list[tuple[float, float]], t0: float, t1: float) -> float:
    """Seconds of [t0, t1] covered by the (non-overlapping) busy ``intervals``."""
    return sum(max(0.0, min(e, t1) - max(s, t0)) for s, e in intervals)
