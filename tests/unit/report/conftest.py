"""Fixtures of the report tests: the fixed result of ``report_fixture_result``."""

from __future__ import annotations

import pytest
from report_fixture_result import make_result

from moesim.results.schema import SimulationResult


@pytest.fixture
def result() -> SimulationResult:
    return make_result()
