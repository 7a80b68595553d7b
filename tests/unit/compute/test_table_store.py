"""Validated tables kept on disk (TableStore): what it reads back is the validated table,
a changed or damaged entry is never used, and the command line keeps its tables there."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from moesim.cli.main import app
from moesim.compute.calibration import CalibrationTable, load_calibration
from moesim.compute.tables import TableCache, TableStore, user_store
from moesim.specs.base import FrozenSpec

ROOT = Path(__file__).resolve().parents[3]
TABLES = [ROOT / "calibration" / "aic-h100-sxm.json", ROOT / "calibration" / "cpu-x86-fp32.json"]


def _same(a: object, b: object) -> None:
    """Equal models all the way down, with the same set fields and private values."""
    assert type(a) is type(b)
    if isinstance(a, FrozenSpec):
        assert a.__pydantic_fields_set__ == b.__pydantic_fields_set__  # type: ignore[union-attr]
        assert a.__pydantic_private__ == b.__pydantic_private__  # type: ignore[union-attr]
        assert a.__dict__.keys() == b.__dict__.keys()
        for k, v in a.__dict__.items():
            _same(v, b.__dict__[k])
    elif isinstance(a, tuple):
        assert len(a) == len(b)  # type: ignore[arg-type]
        for x, y in zip(a, b, strict=True):  # type: ignore[call-overload]
            _same(x, y)
    else:
        assert a == b or (a != a and b != b)  # NaN == NaN here


@pytest.mark.parametrize("path", TABLES, ids=lambda p: p.name)
def test_a_stored_table_is_the_validated_one(path: Path, tmp_path: Path) -> None:
    store = TableStore(tmp_path / "store")
    first = store.load(path)  # validated, then stored
    entries = list((tmp_path / "store").iterdir())
    assert len(entries) == 1 and entries[0] == store.path_of(path.read_bytes())
    again = store.load(path)  # read back
    want = load_calibration(path)
    for got in (first, again):
        assert isinstance(got, CalibrationTable) and got == want
        assert got.source_path == str(path)
        _same(got, want)
        assert got.model_dump() == want.model_dump()


def test_a_changed_table_gets_its_own_entry(tmp_path: Path) -> None:
    src = TABLES[1]
    copy = tmp_path / "t.json"
    copy.write_bytes(src.read_bytes())
    store = TableStore(tmp_path / "store")
    store.load(copy)
    data = json.loads(src.read_text())
    data["notes"] = [*data.get("notes", []), "changed"]
    copy.write_text(json.dumps(data))
    changed = store.load(copy)
    assert changed == load_calibration(copy) and changed.notes[-1] == "changed"
    assert len(list((tmp_path / "store").iterdir())) == 2


def test_a_damaged_entry_is_validated_again_and_rewritten(tmp_path: Path) -> None:
    store = TableStore(tmp_path / "store")
    store.load(TABLES[1])
    entry = store.path_of(TABLES[1].read_bytes())
    for junk in (b"", b"not marshal", entry.read_bytes()[:100]):
        entry.write_bytes(junk)
        assert store.load(TABLES[1]) == load_calibration(TABLES[1])
        assert entry.read_bytes() not in (b"", b"not marshal") and len(entry.read_bytes()) > 100


def test_an_unwritable_store_still_loads(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file, not a folder")
    assert TableStore(blocked / "store").load(TABLES[1]) == load_calibration(TABLES[1])


def test_the_cache_of_a_process_uses_its_store(tmp_path: Path) -> None:
    cache = TableCache(TableStore(tmp_path / "store"))
    assert cache.load(TABLES[1]) is cache.load(TABLES[1])
    assert len(list((tmp_path / "store").iterdir())) == 1


def test_user_store_follows_the_environment(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.setenv("MOESIM_CACHE_DIR", "off")
    assert user_store() is None
    monkeypatch.setenv("MOESIM_CACHE_DIR", str(tmp_path))
    assert user_store().folder == tmp_path  # type: ignore[union-attr]
    monkeypatch.delenv("MOESIM_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_store().folder == tmp_path / "xdg" / "moesim"  # type: ignore[union-attr]
    assert os.environ.get("MOESIM_CACHE_DIR") is None


def test_moesim_run_keeps_its_table_in_the_store(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    monkeypatch.setenv("MOESIM_CACHE_DIR", str(tmp_path / "store"))
    args = ["run", str(ROOT / "scenarios/mixtral-8x7b-64xh100.yaml"), "--fidelity", "analytic",
            "--set", "routing.load.kind=balanced", "--json"]
    outs = []
    for i in range(2):  # validated and stored, then read from the store: the same result
        res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / f"r{i}")])
        assert res.exit_code == 0, res.output
        outs.append(json.loads(res.output))
        assert [p.name[:12] for p in (tmp_path / "store").iterdir()] == ["calibration-"]
    assert outs[0] == outs[1]
