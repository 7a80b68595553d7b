"""Unit factors and parsers (moesim/units.py), checked against their definitions."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moesim import units


def test_factors():
    # NIC: 400 Gb/s = 400e9 bits/s / 8 = 50e9 bytes/s (hardware reference §3: 50 GB/s per GPU).
    assert 400 * units.GBIT_PER_S == 50 * units.GBYTE_PER_S
    assert units.GIB == 2**30 and units.MIB == 2**20 and units.KIB == 2**10
    assert units.GB == 10**9 and units.TFLOPS == 10**12
    assert units.US * 1e6 == pytest.approx(1.0) and units.MS * 1e3 == pytest.approx(1.0)


def test_dtype_bytes():
    assert [units.dtype_bytes(d) for d in ("fp32", "bf16", "fp16", "fp8")] == [4, 2, 2, 1]
    with pytest.raises(KeyError):
        units.dtype_bytes("int3")


@pytest.mark.parametrize("text,expected", [
    ("1GiB", 2**30), ("64 MiB", 64 * 2**20), ("1e9", 1e9), (4096, 4096), ("2GB", 2e9),
    ("16k", 16 * 1024), ("10b", 10),
])
def test_parse_size(text, expected):
    assert units.parse_size(text) == expected


@pytest.mark.parametrize("text,expected", [("15T", 15e12), ("2.5B", 2.5e9), ("100M", 1e8),
                                           ("1e12", 1e12), (7, 7.0)])
def test_parse_count(text, expected):
    assert units.parse_count(text) == pytest.approx(expected)


@given(st.integers(min_value=0, max_value=2**40))
def test_parse_size_roundtrips_mib(n):
    assert units.parse_size(f"{n}MiB") == n * units.MIB
