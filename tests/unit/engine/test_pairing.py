"""Megatron-Core's layer-by-layer 1F1B all-to-all overlap (moesim/engine/pairing.py).

Hand-derived critical paths of the two-stream graph of one layer pair
(TransformerLayerSchedulePlan.run): comm stream combine_bwd | dispatch_fwd, dispatch_bwd |
combine_fwd; compute stream pre_dispatch_fwd | mlp_bwd, mlp_fwd | pre_dispatch_bwd; each node
after its stream and its input.
"""

from __future__ import annotations

import numpy as np
import pytest
from engine_scenarios import ROOT

from moesim.engine import Simulation
from moesim.engine.des import chunk_plans
from moesim.engine.pairing import LayerNodes, Node, PhaseNodes, pair_time
from moesim.specs.loader import load_scenario


def _layer(pre: float, first: float, mid: float, second: float, host: float = 0.0,
           sync: bool = False) -> LayerNodes:
    def n(x: float, s: bool = False) -> Node:
        return Node(np.array([x]), host, s)
    return LayerNodes("L0", n(pre), n(first, sync), n(mid), n(second))


def _phase(layer: LayerNodes) -> PhaseNodes:
    return PhaseNodes([layer], Node(np.array([0.0])))


def test_one_layer_pair_by_hand() -> None:
    # Forward: pre_dispatch 2, dispatch 1, mlp 2, combine 3. Backward: combine_bwd 2,
    # mlp_bwd 4, dispatch_bwd 3, pre_dispatch_bwd 5.
    # combine_bwd [0, 2]; pre_dispatch_fwd [0, 2]; mlp_bwd [2, 6]; dispatch_fwd [2, 3];
    # dispatch_bwd [6, 9] (after mlp_bwd); mlp_fwd [6, 8]; combine_fwd [9, 12];
    # pre_dispatch_bwd [9, 14] (after dispatch_bwd): 14, where compute alone is 13 and the
    # larger of compute and communication (the aggregate bound) is 13.
    f, b = _phase(_layer(2, 1, 2, 3)), _phase(_layer(5, 2, 4, 3))
    dur, stall, _ = pair_time(f, b, 0, 0, 0.0)
    assert float(dur) == pytest.approx(14.0)
    assert float(stall) == pytest.approx(0.0)
    # Compute and communication run together for 2 + 1 + 2 + 3 = 8: a kernel holding a
    # tenth of the SMs adds 0.8.
    assert float(pair_time(f, b, 0, 0, 0.1)[0]) == pytest.approx(14.8)


def test_a_host_bound_pair_waits_for_the_host() -> None:
    # Every node costs 1 of host issue and runs 0.5: a node starts when the host begins
    # issuing it and ends no earlier than its last issue, so node k (in issue order) runs
    # [k, k + 1]: the pair is host-bound, 8, with the host at 8.
    f, b = _phase(_layer(0.5, 0.5, 0.5, 0.5, host=1.0)), _phase(_layer(0.5, 0.5, 0.5, 0.5, 1.0))
    dur, stall, h_end = pair_time(f, b, 0, 0, 0.0)
    assert float(h_end) == pytest.approx(8.0)
    assert float(dur) == pytest.approx(8.0)
    # A host 3 ahead at the start (lead 3) finishes issuing at 5; the graph's own critical
    # path (node k after node k - 1's input) still needs its 0.5 per dependent node.
    assert float(pair_time(f, b, 0, 0, 0.0, 3.0)[0]) == pytest.approx(5.0)


def test_pairs_lie_between_the_aggregate_bound_and_no_overlap() -> None:
    # Every pair of a real step (Qwen3-30B on 16 H100, EP16 over two nodes): at least the
    # larger of its compute and its communication, at most the two run one after another.
    sc = load_scenario(ROOT / "scenarios" / "qwen3-30b-a3b-16xh100.yaml",
                       ["parallelism.overlap_moe_expert_parallel_comm=true",
                        "workload.host_op_us=0"])
    sim = Simulation(sc, fidelity="analytic")
    p = chunk_plans(sim.program, sim.pricer)[(0, 0)]
    fw, bw = p.forward.nodes(True), p.backward.nodes(False)
    assert len(fw.layers) == len(bw.layers) == sc.model_spec.num_layers
    assert fw.layers[0].key == "L0" and bw.layers[0].key == f"L{sc.model_spec.num_layers - 1}"
    m = p.forward.summary.total.shape[0]
    idx = np.arange(m)
    dur = pair_time(fw, bw, idx, idx, 0.0)[0]
    serial = p.forward.summary.total + p.backward.summary.total
    comp = sum(n.dur for lay in fw.layers + bw.layers for n in (lay.pre, lay.mid)) \
        + fw.other.dur + bw.other.dur
    comm = sum(n.dur for lay in fw.layers + bw.layers for n in (lay.first, lay.second))
    assert np.all(dur >= np.maximum(comp, comm) - 1e-12)
    assert np.all(dur <= serial + 1e-12)
