"""Suite-wide: the start-up cache (XDG_CACHE_HOME) lives in a folder of the test session, never in
the user's home; subprocesses inherit it."""
import pytest


@pytest.fixture(scope="session", autouse=True)
def private_cache_home(tmp_path_factory):
    patch = pytest.MonkeyPatch()
    patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    yield
    patch.undo()
