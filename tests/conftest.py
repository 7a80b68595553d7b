from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def _own_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The tests (and the commands they run) keep stored tables in a folder of their own,
    never the user's (moesim.compute.tables.user_store)."""
    old = os.environ.get("MOESIM_CACHE_DIR")
    os.environ["MOESIM_CACHE_DIR"] = str(tmp_path_factory.mktemp("moesim-cache"))
    yield
    if old is None:
        os.environ.pop("MOESIM_CACHE_DIR", None)
    else:
        os.environ["MOESIM_CACHE_DIR"] = old


@pytest.fixture
def root() -> Path:
    return ROOT
