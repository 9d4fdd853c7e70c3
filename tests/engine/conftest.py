"""Fixtures of the engine suite: the binary must exist (a missing build is a failure,
not a skip), and every test gets a fresh case directory."""
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine_driver import BUILD_HINT, ENGINE  # noqa: E402
from etgen import Case  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def engine_binary():
    """Fail every test with the build hint when the engine is not built."""
    if not (ENGINE.is_file() and os.access(ENGINE, os.X_OK)):
        pytest.fail(f"engine binary {ENGINE} not found: {BUILD_HINT}", pytrace=False)
    return ENGINE


@pytest.fixture
def make_case(tmp_path):
    """make_case(**network_and_configs) -> Case in a fresh sub-directory."""
    count = [0]

    def factory(**kwargs):
        count[0] += 1
        return Case(tmp_path / f"case{count[0]}", **kwargs)
    return factory
