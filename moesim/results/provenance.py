"""Where a result came from: the resolved scenario, the overrides, moesim's version, the
calibration table (path and content hash), and a short hash of the inputs that names the
run's output folder (``reports/<name>-<inputs_hash>/``)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from moesim import shipped
from moesim.specs.base import FrozenSpec
from moesim.specs.scenario import ScenarioSpec

HASH_CHARS = 10  # hex digits of sha256 in a folder name: 40 bits, no collision in practice


class CalibrationRef(FrozenSpec):
    """The calibration table a run priced its kernels with."""

    path: str = Field(description="as shipped (calibration/NAME.json) or as the scenario gave it")
    sha256: str = Field(description="sha256 of the file's bytes")
    shipped: bool = False


class ProvenanceResult(FrozenSpec):
    """What produced a result (module docstring)."""

    moesim_version: str
    fidelity: str
    scenario_file: str = Field(default="", description="the scenario file or name given")
    overrides: list[str] = Field(default_factory=list, description="--set PATH=VALUE, in order")
    calibration: CalibrationRef | None = Field(
        default=None, description="null: no table (the roofline priced every kernel)")
    inputs_hash: str = Field(description="sha256 (first 10 hex digits) of the resolved "
                             "scenario, the fidelity and the calibration table's bytes")
    scenario: dict[str, Any] = Field(description="the resolved scenario: topology, model, "
                                     "layout, workload and routing load as the run used them")


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def calibration_ref(scenario: ScenarioSpec) -> CalibrationRef | None:
    """The table the scenario prices with (None: the roofline), as a path and a hash."""
    from moesim.compute.tables import table_path_for

    path = table_path_for(scenario.topology_spec.accelerator, scenario.calibration)
    if path is None or not Path(path).is_file():
        return None
    p = Path(path).resolve()
    root = shipped.data_root().resolve()
    inside = p.is_relative_to(root)
    return CalibrationRef(path=p.relative_to(root).as_posix() if inside else str(path),
                          sha256=file_sha256(p), shipped=inside)


def inputs_hash(resolved: dict[str, Any], fidelity: str, calibration: CalibrationRef | None) -> str:
    text = json.dumps({"scenario": resolved, "fidelity": fidelity,
                       "calibration": calibration.sha256 if calibration else None},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_CHARS]


def provenance(scenario: ScenarioSpec, fidelity: str, *, scenario_file: str | Path = "",
               overrides: Sequence[str] = ()) -> ProvenanceResult:
    """The provenance of simulating ``scenario`` at ``fidelity``."""
    import moesim

    resolved = scenario.model_dump(mode="json")
    cal = calibration_ref(scenario)
    return ProvenanceResult(moesim_version=moesim.__version__, fidelity=fidelity,
                            scenario_file=str(scenario_file), overrides=list(overrides),
                            calibration=cal, inputs_hash=inputs_hash(resolved, fidelity, cal),
                            scenario=resolved)
