"""The step's trace, column by column: every op interval the engine ran, in little space.

A DES step of DeepSeek-V3 on 2048 H800 runs 575k ops; as one pydantic object per interval
that is about a gigabyte and a 200 MB result.json. Here the strings (lanes, names, kinds,
phases) and the args mappings are stored once each, and each interval is a row of eight
numbers kept as numpy arrays; in JSON each column is a base64 string of its zlib-compressed
little-endian bytes (:data:`COLUMNS` gives the dtypes). ``complete`` says whether the
trace holds every op the engine ran (``events == ops_simulated``); ``events()`` gives the
rows as :class:`TraceEventResult` for small traces and tests.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from pydantic import Field

from moesim.specs.base import FrozenSpec

# column -> numpy dtype (little-endian); indices are into the tables of the same name.
COLUMNS: dict[str, str] = {
    "lane": "<i4", "name": "<i4", "kind": "<i4", "args": "<i4", "micro_batch": "<i4",
    "phase": "<i4", "start_s": "<f8", "duration_s": "<f8"}

ArgValue = float | int | str


class TraceEventResult(FrozenSpec):
    """One op interval on one stream of one rank class."""

    rank_class: str
    stream: str
    name: str
    kind: str
    start_s: float
    duration_s: float
    args: dict[str, ArgValue] = Field(default_factory=dict)
    micro_batch: int = Field(default=-1, description="-1: not tied to one micro-batch")
    phase: str = Field(default="", description="'forward:3': the phase and chunk it ran in")


def encode_column(values: np.ndarray, dtype: str) -> str:
    return base64.b64encode(zlib.compress(np.ascontiguousarray(values, dtype=dtype).tobytes(),
                                          1)).decode("ascii")


def decode_column(text: str, dtype: str) -> np.ndarray:
    return np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype=dtype)


class TraceResult(FrozenSpec):
    """Every op interval of one step (module docstring)."""

    complete: bool = Field(default=True, description="the trace holds every op the engine ran")
    ops_simulated: int = Field(default=0, ge=0, description="op intervals the engine ran")
    events: int = Field(default=0, ge=0, description="op intervals this trace holds")
    lanes: list[tuple[str, str]] = Field(default_factory=list,
                                         description="(rank class, stream) of each lane")
    names: list[str] = Field(default_factory=list)
    kinds: list[str] = Field(default_factory=list)
    phases: list[str] = Field(default_factory=list, description="'forward:3' (phase:chunk)")
    arg_sets: list[dict[str, ArgValue]] = Field(default_factory=list)
    columns: dict[str, str] = Field(default_factory=dict,
                                    description="column -> base64(zlib(little-endian array))")

    def __len__(self) -> int:
        return self.events

    def column(self, key: str) -> np.ndarray:
        """One column as a numpy array (empty when the trace is)."""
        if key not in self.columns:
            return np.zeros(0, dtype=COLUMNS[key])
        return decode_column(self.columns[key], COLUMNS[key])

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: self.column(k) for k in COLUMNS}

    def events_list(self) -> list[TraceEventResult]:
        return list(self.iter_events())

    def iter_events(self) -> Iterator[TraceEventResult]:
        a = self.arrays()
        for i in range(self.events):
            rc, stream = self.lanes[a["lane"][i]]
            ph = int(a["phase"][i])
            yield TraceEventResult(
                rank_class=rc, stream=stream, name=self.names[a["name"][i]],
                kind=self.kinds[a["kind"][i]], start_s=float(a["start_s"][i]),
                duration_s=float(a["duration_s"][i]), args=self.arg_sets[a["args"][i]],
                micro_batch=int(a["micro_batch"][i]), phase=self.phases[ph] if ph >= 0 else "")

    @property
    def end_s(self) -> float:
        """When the last interval ends (0 for an empty trace)."""
        if not self.events:
            return 0.0
        return float((self.column("start_s") + self.column("duration_s")).max())


class TraceBuilder:
    """Collects rows, interning strings and args mappings (by identity, then by value)."""

    def __init__(self) -> None:
        self._tables: dict[str, dict[Any, int]] = {k: {} for k in ("lane", "name", "kind",
                                                                    "phase")}
        self._args: dict[int, int] = {}  # id(mapping) -> index
        self._args_by_value: dict[tuple[tuple[str, ArgValue], ...], int] = {}
        self._arg_sets: list[dict[str, ArgValue]] = []
        self._keep: list[Any] = []  # the mappings whose id is a key above stay alive
        self._rows: dict[str, list[float] | list[int]] = {k: [] for k in COLUMNS}

    def _index(self, table: str, value: Any) -> int:
        t = self._tables[table]
        i = t.get(value)
        if i is None:
            i = t[value] = len(t)
        return i

    def _args_index(self, args: dict[str, ArgValue] | None) -> int:
        key = id(args)
        i = self._args.get(key)
        if i is None:
            value = tuple(sorted((args or {}).items()))
            i = self._args_by_value.get(value)
            if i is None:
                i = self._args_by_value[value] = len(self._arg_sets)
                self._arg_sets.append(dict(value))
            self._args[key] = i
            self._keep.append(args)
        return i

    def add(self, rank_class: str, stream: str, name: str, kind: str, start_s: float,
            duration_s: float, args: dict[str, ArgValue] | None = None, micro_batch: int = -1,
            phase: str = "") -> None:
        r = self._rows
        r["lane"].append(self._index("lane", (rank_class, stream)))
        r["name"].append(self._index("name", name))
        r["kind"].append(self._index("kind", kind))
        r["args"].append(self._args_index(args))
        r["micro_batch"].append(micro_batch)
        r["phase"].append(self._index("phase", phase) if phase else -1)
        r["start_s"].append(start_s)
        r["duration_s"].append(duration_s)

    def add_records(self, records: list[tuple[Any, ...]]) -> None:
        """Rows as the engine's ledger keeps them: (rank class, stream, name, kind, start,
        duration, args, micro-batch, (phase, chunk) or None), column by column."""
        if not records:
            return
        rc, stream, name, kind, start, dur, args, mb, label = zip(*records, strict=True)
        r, t = self._rows, self._tables
        r["lane"] += _intern(t["lane"], list(zip(rc, stream, strict=True)))
        r["name"] += _intern(t["name"], name)
        r["kind"] += _intern(t["kind"], kind)
        by_id = {id(a): a for a in args}
        index = {k: self._args_index(a) for k, a in by_id.items()}
        r["args"] += map(index.__getitem__, map(id, args))
        r["micro_batch"] += mb
        # (phase, chunk) -> its table index, labels in first-seen order
        phases = t["phase"]
        code: dict[Any, int] = {None: -1}
        for lab in dict.fromkeys(label):
            if lab is not None:
                code[lab] = phases.setdefault(f"{lab[0]}:{lab[1]}", len(phases))
        r["phase"] += map(code.__getitem__, label)
        r["start_s"] += start
        r["duration_s"] += dur

    def build(self, ops_simulated: int | None = None) -> TraceResult:
        n = len(self._rows["lane"])
        ops = n if ops_simulated is None else max(ops_simulated, n)
        return TraceResult(
            complete=ops == n, ops_simulated=ops, events=n,
            lanes=list(self._tables["lane"]), names=list(self._tables["name"]),
            kinds=list(self._tables["kind"]), phases=list(self._tables["phase"]),
            arg_sets=self._arg_sets,
            columns={k: encode_column(np.asarray(v), COLUMNS[k]) for k, v in self._rows.items()}
            if n else {})


def _intern(table: dict[Any, int], keys: Iterable[Any] | tuple[Any, ...]) -> list[int]:
    """The index of each key in ``table``, new keys appended in first-seen order (as
    ``table.setdefault(k, len(table))`` one key at a time gives them)."""
    for k in dict.fromkeys(keys):
        if k not in table:
            table[k] = len(table)
    return list(map(table.__getitem__, keys))


def trace_from_events(events: Iterable[TraceEventResult | dict[str, Any]]) -> TraceResult:
    """A :class:`TraceResult` of explicit rows (tests, hand-made results, old result files)."""
    b = TraceBuilder()
    for e in events:
        ev = e if isinstance(e, TraceEventResult) else TraceEventResult.model_validate(e)
        b.add(ev.rank_class, ev.stream, ev.name, ev.kind, ev.start_s, ev.duration_s,
              dict(ev.args), ev.micro_batch, ev.phase)
    return b.build()
