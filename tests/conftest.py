"""Every test runs with a private data home and an offline model hub: nothing a test does
can touch the user's meetings, config or model cache, or the network."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_home(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    home = tmp_path_factory.mktemp("notetaker-home")
    mp.setenv("NOTETAKER_HOME", str(home))
    mp.setenv("XDG_DATA_HOME", str(home / "xdg"))
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setenv("HF_HOME", str(home / "hf"))
    yield home
    mp.undo()
