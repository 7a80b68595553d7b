from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moesim.errors import SpecError
from moesim.plan.store import ResultStore, point_id, records_csv

MANIFEST = {"name": "s", "base": "b.yaml", "fidelity": "analytic"}


def _rec(i: int, status: str = "ok") -> dict:
    ov = {"parallelism.expert_parallel_degree": i}
    return {"index": i, "point_id": point_id(ov), "overrides": ov, "status": status,
            "reason": "", "error": "", "metrics": {"tokens_per_s": 10.0 * i}}


@given(st.dictionaries(st.text(min_size=1, max_size=8), st.integers(), min_size=1, max_size=6))
def test_point_id_ignores_key_order(d: dict) -> None:
    reordered = dict(reversed(list(d.items())))
    assert point_id(d) == point_id(reordered)
    assert len(point_id(d)) == 16


def test_point_id_differs_by_value() -> None:
    assert point_id({"a": 1}) != point_id({"a": 2})
    assert point_id({"a": 1}) != point_id({"a": "1"})


def test_truncated_line_and_duplicates_are_dropped(tmp_path: Path) -> None:
    store = ResultStore(tmp_path, MANIFEST)
    for i in (0, 1, 2):
        store.append(_rec(i))
    store.close()
    with open(tmp_path / "points.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(_rec(1)) + "\n")          # a duplicate
        fh.write(json.dumps(_rec(3))[:20])             # a line cut by a kill
    again = ResultStore(tmp_path, MANIFEST)
    assert sorted(r["index"] for r in again.ordered()) == [0, 1, 2]
    lines = (tmp_path / "points.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3 and all(json.loads(x) for x in lines)


def test_error_records_are_retried(tmp_path: Path) -> None:
    store = ResultStore(tmp_path, MANIFEST)
    store.append(_rec(0, status="error"))
    store.append(_rec(1, status="invalid"))
    store.close()
    again = ResultStore(tmp_path, MANIFEST)
    assert not again.done(_rec(0)["point_id"])
    assert again.done(_rec(1)["point_id"])


def test_other_sweep_in_out_dir_is_refused(tmp_path: Path) -> None:
    ResultStore(tmp_path, MANIFEST)
    with pytest.raises(SpecError, match="another sweep"):
        ResultStore(tmp_path, MANIFEST | {"fidelity": "des"})


def test_csv_has_axes_then_metrics_in_index_order() -> None:
    text = records_csv([_rec(0), _rec(2)])
    rows = text.splitlines()
    assert rows[0] == ("index,point_id,status,reason,parallelism.expert_parallel_degree,"
                       "tokens_per_s,error")
    assert rows[1].startswith("0,") and rows[2].endswith(",ok,,2,20.0,")


def test_close_keeps_a_line_whose_bookkeeping_was_interrupted(tmp_path: Path) -> None:
    """Ctrl-C between append's flushed line and its record update: the CSV still has it."""
    store = ResultStore(tmp_path, MANIFEST)
    store.append(_rec(0))
    store._fh.write(json.dumps(_rec(1), sort_keys=True) + "\n")  # written, not yet recorded
    store._fh.flush()
    assert not store.done(_rec(1)["point_id"])
    store.close()
    store.write_csv()
    assert sorted(r["index"] for r in store.ordered()) == [0, 1]
    assert len((tmp_path / "points.csv").read_text(encoding="utf-8").splitlines()) == 3
