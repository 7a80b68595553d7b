"""Bounded YAML: size, depth and alias expansion capped, equal keys refused, no line echoed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from moesim.errors import SpecError
from moesim.specs import loader
from moesim.specs.loader import load_scenario, read_yaml, validate_file
from moesim.specs.yamlsafe import MAX_DEPTH, MAX_FILE_BYTES, parse_yaml, shown_key


def _write(tmp_path: Path, text: str | bytes, name: str = "x.yaml") -> Path:
    f = tmp_path / name
    if isinstance(text, bytes):
        f.write_bytes(text)
    else:
        f.write_text(text)
    return f


def _err(path: Path) -> str:
    with pytest.raises(SpecError) as info:
        read_yaml(path)
    msg = str(info.value)
    assert "\n" not in msg and len(msg) < 500 and msg.startswith(str(path))
    return msg


def billion_laughs(levels: int = 9) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_refused_fast(tmp_path):
    text = billion_laughs()
    assert len(text) < 2000
    t0 = time.process_time()
    msg = _err(_write(tmp_path, text))
    assert time.process_time() - t0 < 1.0
    assert "aliases are expanded" in msg


def test_honest_aliases_and_merge_keys_work(tmp_path):
    data = read_yaml(_write(tmp_path, "base: &b {x: 1, y: 2}\nc: {<<: *b, y: 3}\nd: [*b, *b]\n"))
    assert data["c"] == {"x": 1, "y": 3} and data["d"] == [{"x": 1, "y": 2}] * 2


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 600, 300_000])
def test_deep_nesting_is_refused_without_crash(tmp_path, depth):
    msg = _err(_write(tmp_path, "description: " + "[" * depth + "]" * depth + "\n"))
    assert f"nested more than {MAX_DEPTH} levels" in msg


def test_nesting_through_an_alias_counts(tmp_path):
    deep = "[" * 20 + "]" * 20
    text = f"a: &a {deep}\nb: " + "[" * 20 + "*a" + "]" * 20 + "\n"
    assert "nested more than" in _err(_write(tmp_path, text))


def test_duplicate_keys_are_an_error(tmp_path):
    msg = _err(_write(tmp_path, "routing: {a: 1}\nseed: 0\nrouting: {b: 2}\n"))
    assert "duplicate key 'routing' (first at line 1, column 1)" in msg and "line 3" in msg


@pytest.mark.parametrize("tagged, what", [
    ("model: !!binary aGVsbG8=", "!!binary"), ("x: !!set {a, b}", "!!set"),
    ("x: !!python/object/apply:os.system [echo hi]", "could not determine a constructor"),
])
def test_tags_outside_json_are_refused(tmp_path, tagged, what):
    assert what in _err(_write(tmp_path, tagged + "\n"))


def test_timestamps_stay_text(tmp_path):
    assert read_yaml(_write(tmp_path, "date: 2024-05-01\n")) == {"date": "2024-05-01"}


def test_recursive_alias_is_refused(tmp_path):
    assert "undefined alias" in _err(_write(tmp_path, "a: &a [1, *a]\n"))


def test_non_utf8_large_folder_and_two_documents(tmp_path):
    assert "not UTF-8" in _err(_write(tmp_path, b"name: \xff\xfe\n"))
    assert "larger than" in _err(_write(tmp_path, "x: " + "a" * MAX_FILE_BYTES, "big.yaml"))
    (tmp_path / "dir.yaml").mkdir()
    assert "is a folder" in _err(tmp_path / "dir.yaml")
    assert "more than one YAML document" in _err(_write(tmp_path, "a: 1\n---\nb: 2\n", "two.yaml"))


def test_syntax_errors_quote_no_line(tmp_path):
    secret = "root:*:19000:0:99999:7:::secret-hash-value"
    msg = _err(_write(tmp_path, f"a: [\n{secret}\n  b: {{\n"))
    assert "secret-hash-value" not in msg and "line" in msg


def test_a_foreign_file_named_as_topology_is_not_echoed(tmp_path, root):
    shadow = _write(tmp_path, "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n",
                    "shadow")
    scen = (root / "scenarios/default.yaml").read_text()
    scen = scen.replace("topology: ../topologies/dgx-h100-superpod.yaml", f"topology: {shadow}")
    scen = scen.replace("model: models/mixtral-8x7b.yaml",
                        f"model: {root / 'scenarios/models/mixtral-8x7b.yaml'}")
    f = _write(tmp_path, scen, "s.yaml")
    with pytest.raises(SpecError) as info:
        load_scenario(f)
    msg = str(info.value)
    assert "not a topology file" in msg and "daemon" not in msg and "19000" not in msg


def test_unknown_keys_that_are_not_names_are_not_echoed():
    assert shown_key("zero_stag") == "'zero_stag'"
    assert shown_key("root:*:19000:0:99999:7::") == "<a key of 24 characters>"


def test_each_file_is_parsed_once(tmp_path, root, monkeypatch):
    calls: list[str] = []
    real = loader.read_text_bounded

    def counting(p, *a):
        calls.append(Path(p).name)
        return real(p, *a)

    monkeypatch.setattr(loader, "read_text_bounded", counting)
    validate_file(root / "scenarios/default.yaml")
    assert sorted(calls) == ["default.yaml", "dgx-h100-superpod.yaml", "mixtral-8x7b.yaml"]


def test_set_values_get_the_same_limits(root):
    f = root / "scenarios/default.yaml"
    with pytest.raises(SpecError) as info:
        load_scenario(f, ["description=" + "[" * 600 + "]" * 600])
    assert str(info.value).startswith(str(f)) and "nested more than" in str(info.value)
    with pytest.raises(SpecError, match="empty part"):
        load_scenario(f, ["parallelism..x=1"])
    s = load_scenario(f, ["description=not: [valid yaml"])  # text that is not YAML stays text
    assert s.description == "not: [valid yaml"


def test_parse_yaml_keeps_plain_types():
    assert parse_yaml("a: [1, 2.5, true, null, x]\n") == {"a": [1, 2.5, True, None, "x"]}
