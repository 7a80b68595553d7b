"""How a calibration table covers a scenario: per op family, the shapes it needs that are
measured, derived from measurements, or left to the roofline, and which fell outside.

The answer is the kernel model's own: every shape of :func:`moesim.compute.shapes.
scenario_shapes` is priced by a :class:`KernelCostModel` with the table attached (GEMMs in
the workload dtype; attention and memory-bound ops in BF16, as the engine prices them) and
counted by its ``source``. A grouped GEMM is always derived (the measured grouped ratio
applied to dense GEMMs); it counts as outside when its dense shape lies outside the grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from moesim.compute.calibration import CalibrationTable
from moesim.compute.measured import DERIVED, MEASURED, ROOFLINE
from moesim.compute.model import KernelCostModel
from moesim.compute.shapes import scenario_shapes
from moesim.specs.hardware import AcceleratorSpec
from moesim.specs.model import MLAAttentionSpec
from moesim.specs.scenario import ScenarioSpec


@dataclass
class FamilyReport:
    """Counts of one op family's shapes by source, and the labels of those not measured."""

    family: str
    measured: int = 0
    derived: int = 0
    roofline: int = 0
    outside: list[str] = field(default_factory=list)

    @property
    def needed(self) -> int:
        return self.measured + self.derived + self.roofline

    def add(self, label: str, source: str, inside: bool | None = None) -> None:
        if source == MEASURED:
            self.measured += 1
        elif source == DERIVED:
            self.derived += 1
        else:
            self.roofline += 1
        if (source != MEASURED if inside is None else not inside) and label not in self.outside:
            self.outside.append(label)

    def as_dict(self) -> dict[str, object]:
        return {"family": self.family, "needed": self.needed, "measured": self.measured,
                "derived": self.derived, "roofline": self.roofline,
                "outside": list(self.outside)}


def coverage_dtype(table: CalibrationTable, spec: ScenarioSpec) -> str:
    """The scenario's GEMM dtype if the table has it, else the table's first GEMM dtype (a
    profiled table of one dtype still shows which shapes its grid spans)."""
    have = table.gemm_dtypes()
    return spec.workload.dtype if spec.workload.dtype in have or not have else have[0]


def scenario_coverage(table: CalibrationTable, spec: ScenarioSpec,
                      accelerator: AcceleratorSpec) -> list[FamilyReport]:
    """Per family (gemm, grouped_gemm, attention, memory) of ``spec``'s shapes, GEMMs in
    :func:`coverage_dtype`."""
    shapes = scenario_shapes(spec)
    table = table.attached_to(accelerator.name)
    dtype = coverage_dtype(table, spec)
    gemm_model = KernelCostModel(accelerator, dtype, table)
    bf16 = (gemm_model if dtype == "bf16" or "bf16" not in table.gemm_dtypes()
            else KernelCostModel(accelerator, "bf16", table))
    gemm, grouped = FamilyReport("gemm"), FamilyReport("grouped_gemm")
    for g in shapes.gemm:
        kt = gemm_model.gemm(g.m, g.n, g.k)
        if g.label.startswith("expert_"):
            rows = np.array([float(g.m)])
            src = gemm_model.grouped_gemm(rows, g.n, g.k).source
            grouped.add(g.label, src, inside=kt.source == MEASURED)
        gemm.add(g.label, kt.source)
    attention = FamilyReport("attention")
    att = spec.model_spec.attention
    dv = att.v_head_dim if isinstance(att, MLAAttentionSpec) else None
    for a in shapes.attention:
        args = (a.batch, a.seq, a.seq, a.num_heads, a.num_kv_heads, a.head_dim)
        fwd = bf16.attention(*args, causal=True, head_dim_v=dv)
        bwd = bf16.attention(*args, causal=True, backward=True, head_dim_v=dv)
        attention.add(f"seq {a.seq} fwd", fwd.source)
        # The backward is derived from the forward: inside when the forward was measured.
        attention.add(f"seq {a.seq} bwd", bwd.source, inside=fwd.source == MEASURED)
    memory = FamilyReport("memory")
    for kind, nbytes in shapes.memory_bytes:
        src = bf16.memory_op(nbytes, kind).source
        memory.add(kind, src, inside=src != ROOFLINE)
    return [gemm, grouped, attention, memory]
