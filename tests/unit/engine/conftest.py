from __future__ import annotations

import pytest
from engine_scenarios import MIXTRAL, ROOT, scenario  # noqa: F401


@pytest.fixture
def make_scenario():
    return scenario
