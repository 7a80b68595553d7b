"""The calibration tables shipped in ``calibration/`` and the accelerators they belong to.

Converted from aiconfigurator-core 0.12.0 (NVIDIA, Apache-2.0) by
``moesim calibrate import-aiconfigurator``; see docs/compute.md for what each holds.
"""

from __future__ import annotations

import hashlib
import importlib
import marshal
import os
import sys
from pathlib import Path
from typing import Any

import pydantic

from moesim import shipped
from moesim.compute import calibration
from moesim.compute.calibration import (
    SCHEMA_VERSION,
    CalibrationTable,
    calibration_from_bytes,
    load_calibration,
)
from moesim.io import write_bytes_atomic
from moesim.specs.base import FrozenSpec
from moesim.specs.hardware import AcceleratorSpec

# AcceleratorSpec.name (topologies/*.yaml) -> shipped table file name.
SHIPPED_TABLES: dict[str, str] = {
    "A100-SXM-80GB": "aic-a100-sxm.json",
    "H100-SXM": "aic-h100-sxm.json",
    "H200-SXM": "aic-h200-sxm.json",
    "B200": "aic-b200-sxm.json",
    "GB200": "aic-gb200.json",
    "GB300": "aic-gb300.json",
}


def calibration_dir() -> Path:
    """The shipped ``calibration/`` folder: the checkout's, or the wheel's copy inside the
    package (moesim.shipped)."""
    return shipped.shipped_dir("calibration")


def default_table_for(accelerator_name: str) -> Path | None:
    """The shipped measured table of ``accelerator_name``, or None (no table for it)."""
    name = SHIPPED_TABLES.get(accelerator_name)
    if name is None:
        return None
    path = calibration_dir() / name
    return path if path.is_file() else None


def table_path_for(accelerator: AcceleratorSpec, calibration: str | None) -> Path | None:
    """The table a scenario prices with: its own ``calibration`` path, None for "none" (the
    roofline), else the accelerator's shipped table (or that of the accelerator whose kernels
    it shares, ``kernels_measured_as``)."""
    if calibration == "none":
        return None
    if calibration is not None:
        return Path(calibration)
    own = default_table_for(accelerator.name)
    if own is None and accelerator.kernels_measured_as:
        own = default_table_for(accelerator.kernels_measured_as)
    return own


class TableStore:
    """Validated calibration tables kept in a folder, so that a later process reads a table
    without validating it again (the shipped H100 table: 60 ms to parse and validate, 25 ms
    from here).

    A stored table is derived data only: its file name is the sha256 of the table file's
    bytes and of the code that validates them (this module, ``calibration.py``,
    ``families.py``, ``specs/base.py``, the pydantic and Python versions), so a changed
    table or a changed moesim never reads an old entry. The format is :mod:`marshal` of
    plain values (no pickle: reading an entry builds only the table's own classes); an entry
    that fails to read is validated again and rewritten. Give it a folder of your own: the
    command line uses :func:`user_store`.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def key(self, raw: bytes) -> str:
        h = hashlib.sha256(raw)
        for module in _VALIDATING_MODULES:
            h.update(Path(importlib.import_module(module).__file__ or "").read_bytes())
        h.update(f"{pydantic.VERSION} {sys.version_info[:3]} {SCHEMA_VERSION}".encode())
        return h.hexdigest()[:32]

    def path_of(self, raw: bytes) -> Path:
        return self.folder / f"calibration-{self.key(raw)}.marshal"

    def load(self, path: Path) -> CalibrationTable:
        """The table in the file ``path``: from the store when it holds it, else validated
        (and then stored)."""
        raw = path.read_bytes()
        entry: Path | None = None
        try:
            entry = self.path_of(raw)
            table = _decode(marshal.loads(entry.read_bytes()), _table_classes())
        except (OSError, EOFError, ValueError, TypeError, KeyError, AttributeError):
            table = None
        if not isinstance(table, CalibrationTable):
            table = calibration_from_bytes(path, raw)
            try:
                if entry is not None:
                    self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
                    write_bytes_atomic(entry, marshal.dumps(_encode(table)))
            except (OSError, TypeError, ValueError):
                pass  # a read-only or full folder: validate again next time
        table._path = str(path)
        return table


def user_store() -> TableStore | None:
    """The command line's store: ``$MOESIM_CACHE_DIR`` (``off`` for none), else
    ``$XDG_CACHE_HOME/moesim``, else ``~/.cache/moesim``."""
    where = os.environ.get("MOESIM_CACHE_DIR")
    if where is not None:
        return None if where.strip().lower() in ("", "off", "none", "0") else TableStore(where)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return TableStore(Path(base) / "moesim")


# What validates a table (a store entry's key hashes their source).
_VALIDATING_MODULES = ("moesim.compute.tables", "moesim.compute.calibration",
                       "moesim.compute.families", "moesim.specs.base")


def _table_classes() -> dict[str, type[FrozenSpec]]:
    """The classes a stored table may hold, by name: the table's own, nothing else."""
    from moesim.compute import families

    return {c.__name__: c for module in (calibration, families) for c in vars(module).values()
            if isinstance(c, type) and issubclass(c, FrozenSpec)}


def _encode(model: FrozenSpec) -> dict[str, Any]:
    """A validated model as plain values: a model is a dict, a tuple of models a list (the
    tables' own values are scalars and tuples of scalars; anything else is refused)."""
    state = model.__getstate__()
    values: dict[str, Any] = {}
    for name, v in state["__dict__"].items():
        if isinstance(v, FrozenSpec):
            v = _encode(v)
        elif type(v) is tuple and v and isinstance(v[0], FrozenSpec):
            v = [_encode(x) for x in v]
        elif type(v) in (list, dict) or (type(v) is tuple and v and type(v[0]) in (list, dict)):
            raise TypeError(f"{type(model).__name__}.{name}: not a stored value")
        values[name] = v
    return {"class": type(model).__name__, "set": sorted(state["__pydantic_fields_set__"]),
            "private": state["__pydantic_private__"], "values": values}


def _decode(obj: dict[str, Any], classes: dict[str, type[FrozenSpec]]) -> FrozenSpec:
    """The model :func:`_encode` gave ``obj`` of, rebuilt as unpickling rebuilds a model."""
    cls = classes[obj["class"]]
    values = obj["values"]
    for name, v in values.items():
        if type(v) is dict:
            values[name] = _decode(v, classes)
        elif type(v) is list:
            values[name] = tuple([_decode(x, classes) for x in v])
    model = cls.__new__(cls)
    model.__setstate__({"__dict__": values, "__pydantic_extra__": None,
                        "__pydantic_fields_set__": set(obj["set"]),
                        "__pydantic_private__": obj["private"]})
    return model


class TableCache:
    """Loaded calibration tables by path and modification time (a table file is parsed once
    per process that holds the cache, not once per scenario of a sweep); with a ``store``,
    a table validated by an earlier process is read from there (:class:`TableStore`)."""

    def __init__(self, store: TableStore | None = None) -> None:
        self._tables: dict[tuple[str, int], CalibrationTable] = {}
        self.store = store

    def load(self, path: Path) -> CalibrationTable:
        key = (str(path), path.stat().st_mtime_ns if path.is_file() else 0)
        hit = self._tables.get(key)
        if hit is None:
            read = self.store.load if self.store is not None and path.is_file() else \
                load_calibration
            hit = self._tables[key] = read(path)
        return hit


def measured_collective(table: CalibrationTable | None, accelerator: AcceleratorSpec, op: str,
                        num_gpus: int, size_bytes: float,
                        model_s: float | None = None) -> tuple[float, str] | None:
    """(seconds, source) of an NCCL collective on ``num_gpus`` GPUs of one scale-up domain
    from the accelerator's own measured curves, or None (no table, a table of another
    accelerator, an unmeasured op or GPU count, or a size below the curve).

    Inside the measured sizes: log-log interpolation ("measured"). Above the largest (512 MiB
    in the converted tables) the largest size's bus bandwidth is held, time growing with
    size ("derived": large collectives are bandwidth-bound, nccl-tests' busbw flattens).
    Where the network model (``model_s``) says the bandwidth keeps rising (NVLS systems:
    8x B200 723 GB/s at 1 GiB, 846 at 16 GiB), the bus bandwidth saturates towards the
    model's, B(S) = B_model S / (S + S0), S0 fixed so that B(S_top) is the measured value:
    time (S + S0) / B_model."""
    if table is None or table.accelerator != accelerator.name or num_gpus < 2:
        return None
    t = table.collective_time(op, num_gpus, size_bytes)
    if t is not None:
        return t, "measured"
    curves = [c for c in table.collective_curves if c.op == op and c.num_gpus == num_gpus
              and c.dtype in ("fp16", "bf16")]
    if not curves:
        return None
    c = curves[0]
    top = max(range(len(c.size_bytes)), key=lambda i: c.size_bytes[i])
    if size_bytes <= c.size_bytes[top] or c.time_us[top] is None:
        return None
    t_top, s_top = c.time_us[top] * 1e-6, c.size_bytes[top]
    held = t_top * size_bytes / s_top
    if model_s is None or model_s >= held:
        return held, "derived"
    rate = size_bytes / model_s  # the model's bytes per second at this size
    s0 = s_top * (rate * t_top / s_top - 1.0)  # B_model / b_top - 1 > 0 here
    return (size_bytes + s0) / rate, "derived"


# Tables loaded in this process (a sweep parses each file once); code that wants its own
# passes a TableCache instead.
DEFAULT_TABLES = TableCache()
