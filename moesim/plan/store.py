"""Where sweep results live: a JSONL file appended one line per finished point, and a CSV.

Layout of an out dir::

    sweep.json    what sweep this is (name, base, fidelity, points); a rerun must match it
    points.jsonl  one JSON object per finished point, appended and flushed as it finishes
    points.csv    every point of the sweep in sweep order, rewritten atomically at the end

A point's id hashes what decides its result (moesim.plan.sweep.point_key: the resolved
scenario, the fidelity, moesim's version and code, the side files' bytes), so a rerun after
any of those changed computes the point again instead of reporting it done. A line cut short
by a kill is dropped on the next open; a point id seen twice keeps its last record (a retried
error point supersedes the error). Records with status "error" (an unexpected exception) are
kept, with their message, and retried on a rerun.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from moesim.errors import SpecError
from moesim.io import write_text_atomic

JSONL_NAME = "points.jsonl"
CSV_NAME = "points.csv"
MANIFEST_NAME = "sweep.json"

# Statuses that are final; "error" (an unexpected exception) is kept but retried on a rerun.
FINAL_STATUSES = ("ok", "invalid", "infeasible")
STATUSES = (*FINAL_STATUSES, "error")


def point_id(content: Any) -> str:
    """A stable 16-hex-digit hash of ``content`` (JSON-able; mapping key order does not matter)."""
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class ResultStore:
    """The results of one sweep in one out dir; safe to reopen after a kill."""

    def __init__(self, out_dir: str | Path, manifest: dict[str, Any], *,
                 fresh: bool = False) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.jsonl_path = self.out_dir / JSONL_NAME
        self.csv_path = self.out_dir / CSV_NAME
        if fresh:  # --fresh: forget every recorded point (the manifest is written anew)
            for p in (self.jsonl_path, self.csv_path, self.out_dir / MANIFEST_NAME):
                p.unlink(missing_ok=True)
        self._check_manifest(manifest)
        self.records: dict[str, dict[str, Any]] = self._load()
        self._fh: TextIO | None = None

    def _check_manifest(self, manifest: dict[str, Any]) -> None:
        path = self.out_dir / MANIFEST_NAME
        if path.is_file():
            try:
                old = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                old = None
            keys = ("name", "base", "fidelity")
            if isinstance(old, dict) and any(old.get(k) != manifest.get(k) for k in keys):
                raise SpecError(f"out dir {self.out_dir} holds results of another sweep "
                                f"({', '.join(f'{k}={str(old.get(k))[:60]!r}' for k in keys)}); "
                                "use another --out, or --fresh to replace them", field="out")
        write_text_atomic(path, json.dumps(manifest, indent=1, sort_keys=True) + "\n")

    def _load(self) -> dict[str, dict[str, Any]]:
        if not self.jsonl_path.is_file():
            return {}
        text = self.jsonl_path.read_text(encoding="utf-8")
        records: dict[str, dict[str, Any]] = {}
        clean = True
        for line in text.splitlines(keepends=True):
            rec = _parse(line)
            if rec is None or rec.get("status") not in STATUSES:
                clean = False
                continue
            if rec["point_id"] in records:  # the later record supersedes (a retried point)
                clean = False
                del records[rec["point_id"]]
            records[rec["point_id"]] = rec
        if not clean or (text and not text.endswith("\n")):
            body = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records.values())
            write_text_atomic(self.jsonl_path, body)
        return records

    def done(self, pid: str) -> bool:
        """Whether the point has a final record (an "error" record is retried)."""
        rec = self.records.get(pid)
        return rec is not None and rec["status"] in FINAL_STATUSES

    def append(self, record: dict[str, Any]) -> None:
        """Record one finished point: one line, flushed (and fsynced) before returning."""
        if self.done(record["point_id"]):
            return
        if self._fh is None:
            self._fh = open(self.jsonl_path, "a", encoding="utf-8")  # noqa: SIM115
        self._fh.write(json.dumps(record, sort_keys=True) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.records.pop(record["point_id"], None)
        self.records[record["point_id"]] = record

    def close(self) -> None:
        """Close the JSONL and re-read it, so the records (and the CSV written from them) are
        exactly the finished points on disk, even when Ctrl-C landed inside :meth:`append`
        between the flushed line and its bookkeeping."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
            self.records = self._load()

    def ordered(self, points: Iterable[tuple[int, str, dict[str, Any]]] | None = None
                ) -> list[dict[str, Any]]:
        """Records in sweep order. ``points``: (index, point id, overrides) of the sweep, so
        that every point with a record gets its row, also two points that resolve to the same
        scenario (one record, computed once); None: the recorded points by their index."""
        if points is None:
            return sorted(self.records.values(), key=lambda r: r["index"])
        out = []
        for index, pid, overrides in points:
            rec = self.records.get(pid)
            if rec is not None:
                out.append(rec | {"index": index, "overrides": overrides})
        return out

    def write_csv(self, points: Iterable[tuple[int, str, dict[str, Any]]] | None = None
                  ) -> Path:
        """Rewrite the CSV atomically: one row per point with a record, axes then metrics."""
        return write_text_atomic(self.csv_path, records_csv(self.ordered(points)))


def _parse(line: str) -> dict[str, Any] | None:
    if not line.endswith("\n"):
        return None
    try:
        rec = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(rec, dict) or "point_id" not in rec or "index" not in rec:
        return None
    return rec


def records_csv(records: list[dict[str, Any]]) -> str:
    """CSV text: index, point_id, status, reason, each override, each metric, error."""
    axes: list[str] = []
    metrics: list[str] = []
    for r in records:
        axes += [k for k in r.get("overrides", {}) if k not in axes]
        metrics += [k for k in r.get("metrics", {}) if k not in metrics]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["index", "point_id", "status", "reason", *axes, *metrics, "error"])
    for r in records:
        ov, me = r.get("overrides", {}), r.get("metrics", {})
        w.writerow([r["index"], r["point_id"], r["status"], r.get("reason", ""),
                    *(_cell(ov.get(a)) for a in axes), *(_cell(me.get(m)) for m in metrics),
                    r.get("error", "")])
    return buf.getvalue()


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    return str(v)
