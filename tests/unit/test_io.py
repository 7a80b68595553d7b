"""Atomic writes: whole or nothing, and the mode a plain open() would give."""

import os
import stat

import pytest

from moesim.io import write_bytes_atomic, write_text_atomic


def test_write_is_whole_and_mode_follows_umask(tmp_path):
    p = write_text_atomic(tmp_path / "sub" / "a.txt", "hello")
    assert p.read_text() == "hello"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask
    assert [f.name for f in p.parent.iterdir()] == ["a.txt"]  # no temporary left behind


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    p = write_text_atomic(tmp_path / "a.txt", "old")
    with pytest.raises(TypeError):
        write_bytes_atomic(p, "not bytes")  # type: ignore[arg-type]
    assert p.read_text() == "old"
    assert [f.name for f in tmp_path.iterdir()] == ["a.txt"]


def test_safe_name_is_one_path_component() -> None:
    from moesim.io import safe_name

    for name, want in [("default", "default"), ("../../x", "x"), ("/etc/passwd", "etc_passwd"),
                       ("..", "unnamed"), ("", "unnamed"), ("a/b\\c", "a_b_c"),
                       (".hidden", "hidden"), ("a\x00b", "a_b"), ("x" * 300, "x" * 100)]:
        got = safe_name(name)
        assert got == want, (name, got)
        assert "/" not in got and not got.startswith(".")
