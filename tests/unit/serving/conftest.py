from __future__ import annotations

import pytest
from serving_scenarios import scenario


@pytest.fixture
def make_serving():
    return scenario
