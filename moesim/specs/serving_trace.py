"""Request traces: (arrival time, input tokens, output tokens) rows from CSV or JSON Lines.

A trace is read once, bounded in size like every side file, and every bad row is one
SpecError line naming the file, the line and the column (never the row's text beyond the
value): a negative length, a missing column, a non-number, a time below 0.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from moesim.errors import SpecError
from moesim.specs import bounds as B
from moesim.specs.yamlsafe import read_text_bounded

# A trace of 2^22 rows (the request cap) is about 100 MB of CSV.
MAX_TRACE_BYTES = 256 << 20
COLUMNS = ("arrival_s", "input_tokens", "output_tokens")


@dataclass(frozen=True)
class Trace:
    """Rows sorted by arrival: seconds, prompt tokens, generated tokens (first included)."""

    arrival_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray

    def __len__(self) -> int:
        return int(self.arrival_s.shape[0])


def read_trace(path: str | Path, *, field: str = "workload.arrival.path",
               limit: int | None = None) -> Trace:
    """The trace at ``path`` (CSV with a header, or JSON Lines); its first ``limit`` rows in
    file order, then sorted by arrival time."""
    p = Path(path)
    text = read_text_bounded(p, MAX_TRACE_BYTES)
    rows = _jsonl_rows(text, p, field) if p.suffix in (".jsonl", ".ndjson") else _csv_rows(
        text, p, field)
    if limit is not None:
        rows = rows[:limit]
    if not rows:
        raise SpecError(f"{field}: the trace has no requests", file=str(p), field=field)
    arr = np.array(rows, dtype=np.float64)
    order = np.argsort(arr[:, 0], kind="stable")
    arr = arr[order]
    return Trace(arr[:, 0].copy(), arr[:, 1].astype(np.int64), arr[:, 2].astype(np.int64))


def _csv_rows(text: str, p: Path, field: str) -> list[tuple[float, int, int]]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise SpecError(f"{field}: the trace is empty; it needs a header with "
                        f"{', '.join(COLUMNS)}", file=str(p), field=field)
    names = [h.strip() for h in header]
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise SpecError(f"{field}: the trace's header lacks {', '.join(missing)} (it needs "
                        f"{', '.join(COLUMNS)})", file=str(p), field=field)
    idx = [names.index(c) for c in COLUMNS]
    out = []
    for line, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) <= max(idx):
            raise SpecError(f"{field}: line {line} has {len(row)} columns, fewer than the "
                            "header's", file=str(p), field=field)
        out.append(_row([row[i] for i in idx], line, p, field))
        _check_count(len(out), p, field)
    return out


def _jsonl_rows(text: str, p: Path, field: str) -> list[tuple[float, int, int]]:
    out = []
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except (json.JSONDecodeError, RecursionError):
            raise SpecError(f"{field}: line {line} is not JSON", file=str(p), field=field) from None
        if not isinstance(obj, dict) or any(c not in obj for c in COLUMNS):
            raise SpecError(f"{field}: line {line} needs the keys {', '.join(COLUMNS)}",
                            file=str(p), field=field)
        out.append(_row([obj[c] for c in COLUMNS], line, p, field))
        _check_count(len(out), p, field)
    return out


def _check_count(n: int, p: Path, field: str) -> None:
    from moesim.specs.serving import MAX_REQUESTS

    if n > MAX_REQUESTS:
        raise SpecError(f"{field}: the trace has more than {MAX_REQUESTS:,} requests (the "
                        "request cap); give workload.num_requests or cut the file",
                        file=str(p), field=field)


def _row(values: list[object], line: int, p: Path, field: str) -> tuple[float, int, int]:
    parsed: list[float] = []
    for name, v in zip(COLUMNS, values, strict=True):
        try:
            x = float(v.strip() if isinstance(v, str) else v)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            shown = repr(v)[:30]
            raise SpecError(f"{field}: line {line}: {name}={shown} is not a number",
                            file=str(p), field=field) from None
        if not math.isfinite(x):
            raise SpecError(f"{field}: line {line}: {name}={x} is not finite", file=str(p),
                            field=field)
        parsed.append(x)
    t, n_in, n_out = parsed
    if t < 0:
        raise SpecError(f"{field}: line {line}: arrival_s={t:g} must be >= 0", file=str(p),
                        field=field)
    for name, x in (("input_tokens", n_in), ("output_tokens", n_out)):
        if x < 1 or x != int(x) or x > B.MAX_SEQUENCE:
            raise SpecError(f"{field}: line {line}: {name}={x:g} must be a whole number of "
                            f"tokens from 1 to {B.MAX_SEQUENCE:,}", file=str(p), field=field)
    return t, int(n_in), int(n_out)
