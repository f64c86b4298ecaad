import os
import sys
from pathlib import Path

import pytest
import torch

TESTS = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


@pytest.fixture
def fault_models(monkeypatch):
    """The test-only models of tests/fault_models.py, here and in the workers (they inherit the variables)."""
    monkeypatch.setenv("CNNBENCH_PLUGINS", "fault_models")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    from bench.zoo import load_plugins
    load_plugins.cache_clear()
    load_plugins()


@pytest.fixture(autouse=True, scope="session")
def _catalog_cache(tmp_path_factory):
    """`cnnbench list`'s cache in a folder of this session's, not the user's ~/.cache."""
    os.environ.setdefault("CNNBENCH_CACHE_DIR", str(tmp_path_factory.mktemp("cnnbench-cache")))
