"""Predict every measured point of one case file with moesim's own cost models.

No cost logic lives here: training scenarios go through ``moesim.engine``, collectives
through ``moesim.network.collective_time``, GEMMs and grouped GEMMs through
``moesim.compute.KernelCostModel`` and DeepEP points through ``moesim.network.deepep``. This module only maps a measured metric
to the number those functions return, in the metric's units.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from moesim.check.cases import (
    AnyCaseSpec,
    CollectiveCaseSpec,
    DeepEPCaseSpec,
    DeepEPPointSpec,
    GemmCaseSpec,
    GroupedGemmCaseSpec,
    RatioCaseSpec,
    ScenarioRefSpec,
    ServingCaseSpec,
)
from moesim.errors import SpecError
from moesim.results.schema import SimulationResult
from moesim.specs.scenario import MeasuredSpec, ScenarioSpec
from moesim.units import GBYTE_PER_S, TFLOPS, US

if TYPE_CHECKING:
    from moesim.compute.calibration import CalibrationTable
    from moesim.specs.hardware import AcceleratorSpec

Fidelity = Literal["des", "analytic"]


@dataclass(frozen=True)
class CheckRow:
    """One measured point against its prediction (both in ``units``)."""

    file: str
    case: str
    label: str
    kind: str               # training, collective, gemm, grouped_gemm, deepep, ratio, serving
    metric: str
    category: str
    units: str
    published: float
    predicted: float
    source: str
    note: str
    in_sample: bool

    @property
    def error_pct(self) -> float:
        """Signed error of the prediction in percent of the published value."""
        return 100.0 * (self.predicted - self.published) / self.published

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready row, error included."""
        d = dict(self.__dict__)
        d["error_pct"] = self.error_pct
        return d


def result_field(result: SimulationResult, metric: str, *, file: str = "") -> float:
    """The numeric value of a dotted result path, e.g. ``breakdown.pipeline_bubble_s``."""
    node: Any = result.model_dump(mode="python", exclude={"trace"})
    for key in metric.split("."):
        if isinstance(node, dict) and key in node:
            node = node[key]
        else:
            valid = sorted(k for k, v in result.model_dump(exclude={"trace"}).items()
                           if isinstance(v, (int, float)) and not isinstance(v, bool))
            raise SpecError(f"metric={metric!r} is not a numeric result field; valid: "
                            f"{', '.join(valid)}, or a dotted path such as "
                            "breakdown.pipeline_bubble_s", file=file or None, field="measured")
    if isinstance(node, bool) or not isinstance(node, (int, float)):
        raise SpecError(f"metric={metric!r} is not a number in the result", file=file or None,
                        field="measured")
    return float(node)


def simulate_scenario(spec: ScenarioSpec, fidelity: Fidelity) -> SimulationResult:
    """One step of ``spec`` by the engine (memory pass included: peak memory is a metric)."""
    from moesim.engine import simulate

    return simulate(spec, fidelity=fidelity)


def _row(file: str, case: str, label: str, kind: str, m: MeasuredSpec,
         predicted: float) -> CheckRow:
    return CheckRow(file=file, case=case, label=label, kind=kind, metric=m.metric,
                    category=m.category, units=m.units, published=float(m.value),
                    predicted=float(predicted),
                    source=f"{m.source} ({m.date})" if m.date else m.source, note=m.note,
                    in_sample=m.in_sample)


def evaluate_scenario(path: str, spec: ScenarioSpec, fidelity: Fidelity) -> list[CheckRow]:
    """Simulate a training scenario once and read every measured metric from the result (a
    serving scenario: its request stream, metrics from the serving result)."""
    if spec.is_serving:
        from moesim.serving import simulate_serving

        flat = simulate_serving(spec).flat_metrics()
        return [_row(path, spec.name, m.metric, "serving", m, _serving_metric(flat, m.metric,
                                                                              path))
                for m in spec.measured]
    result = simulate_scenario(spec, fidelity)
    return [_row(path, spec.name, m.metric, "training", m, result_field(result, m.metric,
                                                                        file=path))
            for m in spec.measured]


def _cluster(path: str,  # noqa: ANN202
             case: CollectiveCaseSpec | GemmCaseSpec | GroupedGemmCaseSpec | DeepEPCaseSpec):
    from moesim.cluster import build_cluster
    from moesim.specs.loader import load_topology

    topo_path = Path(path).parent / case.topology
    topo = load_topology(topo_path, case.topology_overrides or None)
    return topo, build_cluster(topo, case.num_devices)


def evaluate_collective(path: str, case: CollectiveCaseSpec, *,
                        one_call_s: float | None = None) -> list[CheckRow]:
    """nccl-tests bus/alg bandwidth (GB/s) or time (s) of each point: NCCL's default choice
    inside one scale-up domain from the accelerator's measured curves where they exist, the
    flow model otherwise (and for a forced algorithm). A point timed one ``torch.distributed``
    call at a time adds that call's host cost, ``one_call_s`` (default
    moesim.network.efficiency.TORCH_ONE_CALL_S; the fit passes 0 to see the bare times)."""
    from moesim.compute.tables import DEFAULT_TABLES, default_table_for, measured_collective
    from moesim.network import collective_time
    from moesim.network.efficiency import TORCH_ONE_CALL_S

    extra = TORCH_ONE_CALL_S if one_call_s is None else one_call_s

    topo, cluster = _cluster(path, case)
    path_ = default_table_for(topo.accelerator.name)
    table = DEFAULT_TABLES.load(path_) if path_ is not None else None
    per = topo.devices_per_domain
    rows = []
    for p in case.points:
        groups = p.group_list()
        r = collective_time(cluster, p.op, groups, p.size_bytes, algorithm=p.algorithm)
        t = r.time_s
        inside = all(len({d // per for d in g}) == 1 for g in groups)
        hit = (measured_collective(table, topo.accelerator, p.op, len(groups[0]), p.size_bytes,
                                   r.time_s)
               if p.algorithm is None and inside else None)
        if hit is not None:
            t = hit[0]
        if case.point_timing(p) == "torch-one-call":
            t += extra
        scale = r.time_s / t if t > 0 else 1.0
        values = {"busbw_gbyte_per_s": r.busbw_bytes_per_s * scale / GBYTE_PER_S,
                  "algbw_gbyte_per_s": r.algbw_bytes_per_s * scale / GBYTE_PER_S, "time_s": t}
        rows += [_row(path, case.name, p.label, "collective", m, values[m.metric])
                 for m in p.measured]
    return rows


def _kernel_table(path: str, case: GemmCaseSpec | GroupedGemmCaseSpec,
                  accelerator: AcceleratorSpec) -> CalibrationTable | None:
    """The table a kernel case prices with: the one a scenario on ``accelerator`` would use
    (its shipped table, or that of ``kernels_measured_as``), 'none' for the roofline, or the
    case's own path (relative to the case file)."""
    from moesim.compute.tables import DEFAULT_TABLES, table_path_for

    cal = case.calibration
    if cal is not None and cal != "none":
        cal = str(Path(path).parent / cal)
    where = table_path_for(accelerator, cal)
    return DEFAULT_TABLES.load(where) if where is not None else None


def evaluate_gemm(path: str, case: GemmCaseSpec) -> list[CheckRow]:
    """Achieved TFLOP/s (2mnk·batch / time) or time (s) of each GEMM on the accelerator."""
    from moesim.compute import KernelCostModel

    topo, _ = _cluster(path, case)
    table = _kernel_table(path, case, topo.accelerator)
    rows = []
    for p in case.points:
        t = KernelCostModel(topo.accelerator, p.dtype, table).gemm(p.m, p.n, p.k, batch=p.batch)
        values = {"tflops": t.flops / t.time_s / TFLOPS, "time_s": t.time_s}
        rows += [_row(path, case.name, p.label, "gemm", m, values[m.metric]) for m in p.measured]
    return rows


def evaluate_grouped_gemm(path: str, case: GroupedGemmCaseSpec) -> list[CheckRow]:
    """Achieved TFLOP/s (2 x groups x M x n x k / time) or time (s) of each grouped GEMM."""
    from moesim.compute import KernelCostModel

    topo, _ = _cluster(path, case)
    table = _kernel_table(path, case, topo.accelerator)
    rows = []
    for p in case.points:
        t = KernelCostModel(topo.accelerator, p.dtype, table).grouped_gemm(
            [p.tokens_per_group] * p.groups, p.n, p.k)
        values = {"tflops": t.flops / t.time_s / TFLOPS, "time_s": t.time_s}
        rows += [_row(path, case.name, p.label, "grouped_gemm", m, values[m.metric])
                 for m in p.measured]
    return rows


def evaluate_deepep(path: str, case: DeepEPCaseSpec) -> list[CheckRow]:
    """DeepEP's reported dispatch / combine bandwidth (GB/s, its own accounting) or latency (us)."""
    from moesim.network.deepep import deepep_low_latency, deepep_reported_bandwidth

    _, cluster = _cluster(path, case)
    per_node = getattr(cluster.topology.tiers[0], "num_devices", 8)
    rows = []
    for p in case.points:
        if p.mode == "low_latency":
            ll = deepep_low_latency(
                cluster, p.num_ranks, phase=p.phase, ranks_per_node=per_node,
                num_tokens=p.num_tokens, hidden=p.hidden, num_topk=p.num_topk,
                dtype=p.token_dtype, nvlink=p.nvlink)
            bw, time_s = ll.reported_bandwidth, ll.time_s
        else:
            bw = deepep_reported_bandwidth(
                cluster, p.num_ranks, phase=p.phase, ranks_per_node=per_node,
                num_tokens=p.num_tokens, hidden=p.hidden, num_topk=p.num_topk,
                num_experts=p.num_experts, num_topk_groups=p.num_topk_groups,
                dtype=p.token_dtype)
            time_s = _normal_reported_bytes(p, per_node) / bw
        values = {"bandwidth_gbyte_per_s": bw / GBYTE_PER_S, "latency_us": time_s / US}
        rows += [_row(path, case.name, p.label, "deepep", m, values[m.metric]) for m in p.measured]
    return rows


def _normal_reported_bytes(p: DeepEPPointSpec, per_node: int) -> float:
    """Bytes per rank that DeepEP's normal-kernel benchmark divides by the kernel time."""
    from moesim.network.deepep import deepep_traffic, token_bytes

    tr = deepep_traffic(p.num_ranks, ranks_per_node=per_node, num_tokens=p.num_tokens,
                        hidden=p.hidden, num_topk=p.num_topk, num_experts=p.num_experts,
                        num_topk_groups=p.num_topk_groups,
                        token_bytes=token_bytes(p.hidden, p.phase, p.token_dtype))
    return tr.reported_bytes


def _ref_value(path: str, ref: ScenarioRefSpec, field: str, fidelity: Fidelity,
               seen: dict[tuple[str, tuple[str, ...]], SimulationResult]) -> float:
    """``field`` of the referenced scenario; each (file, sets) is simulated once per case."""
    from moesim.specs.loader import load_scenario

    key = (str(Path(path).parent / ref.scenario), ref.sets)
    if key not in seen:
        seen[key] = simulate_scenario(load_scenario(key[0], ref.sets), fidelity)
    return result_field(seen[key], field, file=path)


def evaluate_ratio(path: str, case: RatioCaseSpec, fidelity: Fidelity) -> list[CheckRow]:
    """``field`` of the numerator scenario over the denominator's, each simulated."""
    rows = []
    seen: dict[tuple[str, tuple[str, ...]], SimulationResult] = {}
    for p in case.points:
        num = _ref_value(path, p.numerator, p.field, fidelity, seen)
        den = _ref_value(path, p.denominator, p.field, fidelity, seen)
        if den == 0:
            raise SpecError(f"point {p.label!r}: the denominator's {p.field} is 0", file=path)
        rows += [_row(path, case.name, p.label, "ratio", m, num / den) for m in p.measured]
    return rows


def _serving_metric(flat: dict[str, Any], metric: str, file: str) -> float:
    value = flat.get(metric)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        valid = sorted(k for k, v in flat.items() if isinstance(v, (int, float))
                       and not isinstance(v, bool))
        raise SpecError(f"metric={metric!r} is not a number in this serving result; valid: "
                        f"{', '.join(valid)}", file=file, field="measured")
    return float(value)


def evaluate_serving(path: str, case: ServingCaseSpec) -> list[CheckRow]:
    """Each point: the case's serving scenario with the point's ``--set`` overrides, run (or,
    for a latency metric, one role's dispatch / combine priced at ``tokens_per_rank``)."""
    from moesim.serving import RolePricer, simulate_serving
    from moesim.specs.loader import load_scenario

    scenario = str(Path(path).parent / case.scenario)
    rows = []
    for p in case.points:
        spec = load_scenario(scenario, p.sets)
        runs = [m for m in p.measured if not m.metric.endswith("_latency_us")]
        flat = simulate_serving(spec).flat_metrics() if runs else {}
        for m in p.measured:
            if m.metric.endswith("_latency_us"):
                role_name, _, what = m.metric.partition(".")
                roles = spec.deployment.roles if spec.deployment is not None else {}
                if role_name not in roles:
                    raise SpecError(f"point {p.label!r}: metric {m.metric!r} names role "
                                    f"{role_name!r}; the deployment has {', '.join(roles)}",
                                    file=path)
                direction = what.removesuffix("_latency_us")
                pricer = RolePricer(spec, role_name, roles[role_name])
                assert p.tokens_per_rank is not None
                value = pricer.all_to_all_time(direction, p.tokens_per_rank) / US
            else:
                value = _serving_metric(flat, m.metric, path)
            rows.append(_row(path, case.name, p.label, "serving", m, value))
    return rows


def evaluate_case(path: str, case: AnyCaseSpec, fidelity: Fidelity) -> list[CheckRow]:
    """Every measured point of a loaded case file."""
    if isinstance(case, CollectiveCaseSpec):
        return evaluate_collective(path, case)
    if isinstance(case, GemmCaseSpec):
        return evaluate_gemm(path, case)
    if isinstance(case, GroupedGemmCaseSpec):
        return evaluate_grouped_gemm(path, case)
    if isinstance(case, DeepEPCaseSpec):
        return evaluate_deepep(path, case)
    if isinstance(case, ServingCaseSpec):
        return evaluate_serving(path, case)
    return evaluate_ratio(path, case, fidelity)
