"""The shipped goodput defaults (``topologies/goodput/defaults.yaml``) and user overrides."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from moesim.errors import SpecError
from moesim.specs.goodput import GoodputDefaultsSpec, GoodputSpec
from moesim.specs.loader import read_yaml, validate_as
from moesim.specs.scenario import ScenarioSpec

DEFAULTS_PATH = Path(__file__).resolve().parents[2] / "topologies" / "goodput" / "defaults.yaml"


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``: mappings merge key by key, anything else replaces."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_defaults(path: str | Path = DEFAULTS_PATH) -> GoodputDefaultsSpec:
    """The defaults file, validated."""
    return validate_as(GoodputDefaultsSpec, read_yaml(path), file=str(path))


def load_goodput(accelerator: str, path: str | Path | None = None,
                 defaults: str | Path = DEFAULTS_PATH) -> GoodputSpec:
    """The goodput spec for ``accelerator``: the defaults with its host entry, then the
    sections of ``path`` (a YAML file of GoodputSpec fields, ``hosts:`` or ``host:``) on top."""
    spec = load_defaults(defaults)
    host = spec.hosts.get(accelerator)
    data: dict[str, Any] = {**spec.model_dump(mode="json", exclude={"hosts"}),
                            "host": host.model_dump(mode="json") if host else {}}
    if path is not None:
        user = read_yaml(path)
        if not isinstance(user, dict):
            raise SpecError(f"expected a mapping at the top level, got {type(user).__name__}",
                            file=str(path))
        user = dict(user)
        hosts = user.pop("hosts", None)
        if isinstance(hosts, dict) and isinstance(hosts.get(accelerator), dict):
            data["host"] = _merged(data["host"], hosts[accelerator])
        data = _merged(data, user)
        return validate_as(GoodputSpec, data, file=str(path))
    return validate_as(GoodputSpec, data, file=str(defaults))


def goodput_for(scenario: ScenarioSpec, path: str | Path | None = None) -> GoodputSpec:
    """The goodput spec of the scenario's accelerator."""
    return load_goodput(scenario.topology_spec.accelerator.name, path)
