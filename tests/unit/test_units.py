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
    ("16k", 16_000), ("16Ki", 16 * 1024), ("1M", 1e6), ("1MB", 1e6), ("1Mi", 2**20),
    ("10b", 10), ("3 TiB", 3 * 2**40),
])
def test_parse_size(text, expected):
    assert units.parse_size(text) == expected


@pytest.mark.parametrize("text,expected", [("15T", 15e12), ("2.5B", 2.5e9), ("100M", 1e8),
                                           ("1e12", 1e12), (7, 7.0), ("1Gi", 2**30),
                                           ("4k", 4000)])
def test_parse_count(text, expected):
    assert units.parse_count(text) == pytest.approx(expected)


@given(st.integers(min_value=0, max_value=2**40))
def test_parse_size_roundtrips_mib(n):
    assert units.parse_size(f"{n}MiB") == n * units.MIB


@pytest.mark.parametrize("text", ["1M", "16Ki", "2.5G", "3T", "7Pi", "250"])
def test_one_convention_for_sizes_and_counts(text):
    """--size and --tokens read a prefix alike: 'i' binary, none decimal."""
    assert units.parse_size(text) == units.parse_count(text)


@pytest.mark.parametrize("x,unit,shown", [
    (4.979e5, "tokens/s", "497.9k tokens/s"), (1e12, "tokens", "1T tokens"),
    (3.2e-5, "s", "32 µs"), (1.5e9, "B/s", "1.5 GB/s"), (0.5, "tokens/s", "0.5 tokens/s"),
    (864, "TFLOP/s", "864 TFLOP/s"), (None, "x", "-"), (0, "s", "0 s"),
])
def test_engineering_notation(x, unit, shown):
    assert units.eng(x, unit) == shown


@given(st.floats(min_value=-1e18, max_value=1e18, allow_nan=False))
def test_engineering_notation_never_scientific(x):
    assert "e+" not in units.eng(x, "tokens") and "e-" not in units.eng(x, "s")


def test_sizes_with_binary_prefixes():
    assert units.ibytes(2**30) == "1 GiB" and units.ibytes(64 * 2**20) == "64 MiB"
    assert units.gib(80 * 2**30) == "80.00 GiB"
