"""Every test runs with a private data home and an offline model hub: nothing a test does
can touch the user's meetings, config or model cache, or the network. Nor does it find the
machine's own LLM servers (Ollama on 11434 and the like): the tests of that start their own
and name its port."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_home(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    home = tmp_path_factory.mktemp("notetaker-home")
    mp.setenv("NOTETAKER_HOME", str(home))
    mp.setenv("XDG_DATA_HOME", str(home / "xdg"))
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setenv("HF_HOME", str(home / "hf"))
    mp.setenv("NOTETAKER_OPENAI_DETECT", "off")
    import notetaker.servers

    mp.setattr(notetaker.servers, "_detect", lambda ports: ())  # Settings() built in tests, not from env
    yield home
    mp.undo()
