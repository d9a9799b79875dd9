"""Adding a rewrite backend is one module plus one registry line: a test-only backend
(tests/rewrite/echo_backend.py) registered at test time is named, checked and built through
rewrite.registry.load_backend, the path the app takes, and then cleans and summarizes like
any other."""

from __future__ import annotations

from pathlib import Path

import pytest

from rewrite import registry
from rewrite.backend import RewriteBackend
from rewrite.base import RewriteError, Segment
from rewrite.summarize import Summarizer
from tests.rewrite import echo_backend
from tests.support.imports import import_graph

SEGMENTS = [Segment(1, 0.0, 2.0, "um so we ship on friday"), Segment(2, 2.0, 4.0, "uh Ana owns the release")]


@pytest.fixture
def echo(monkeypatch):
    """The one line a new backend adds to rewrite.registry.BACKENDS."""
    monkeypatch.setitem(registry.BACKENDS, "echo", "tests.rewrite.echo_backend:SPEC")


def test_an_unregistered_backend_is_unknown():
    with pytest.raises(RewriteError, match="unknown rewrite backend 'echo'; available: none, mlx, voxtral, openai$"):
        registry.backend_name("echo")


def test_a_registered_backend_is_named_described_and_built_like_the_others(echo, tmp_path):
    assert registry.backend_names() == ["none", "mlx", "voxtral", "openai", "echo"]
    assert registry.backend_name("ECHO") == "echo"
    spec = registry.backend_spec("echo")
    assert spec is echo_backend.SPEC and spec.default_model == "tests/echo-base"

    backend = registry.load_backend("echo", "echo-small", cache_dir=tmp_path, context_tokens=2048)
    assert isinstance(backend, echo_backend.EchoBackend) and isinstance(backend, RewriteBackend)
    assert backend.capabilities.model == "tests/echo-small" and backend.capabilities.context_tokens == 2048
    assert backend.folder == tmp_path

    assert backend.cleanup(SEGMENTS) == ["so we ship on friday", "Ana owns the release"]
    summarizer = Summarizer(backend)
    text = "".join(summarizer.stream(SEGMENTS))
    assert "The meeting was echoed [#1]" in text
    backend.close()
    assert backend.closed


def test_the_registry_checks_what_a_spec_needs_before_building(echo):
    with pytest.raises(RewriteError, match="^the echo backend needs a folder for its models$"):
        registry.load_backend("echo")


def test_a_spec_that_names_a_fallback_gets_it_built_from_the_same_options(echo, monkeypatch, tmp_path):
    monkeypatch.setitem(registry.BACKENDS, "echo-offline", "tests.rewrite.echo_backend:UNAVAILABLE_SPEC")
    lines: list[str] = []
    backend = registry.load_backend("echo-offline", "echo-small", cache_dir=tmp_path, report=lines.append)
    assert isinstance(backend, echo_backend.EchoBackend) and backend.capabilities.model == "tests/echo-small"
    assert lines == ["echo-offline is unavailable; using echo instead"]


def test_none_is_no_backend_and_has_no_spec():
    assert registry.load_backend(None) is None and registry.load_backend("none") is None
    with pytest.raises(RewriteError):
        registry.backend_spec("none")


def test_every_listed_backend_has_a_spec_under_its_own_name():
    """The registry line and the module agree (voxtral's module loads MLX; the CPU build has it)."""
    for name in registry.BACKENDS:
        assert registry.backend_spec(name).name == name


def test_the_openai_backend_needs_a_server_address():
    with pytest.raises(RewriteError, match="^the openai backend needs a server address"):
        registry.load_backend("openai")


def test_only_the_registry_reaches_the_backends():
    """(No import cycle anywhere is checked for the whole project in tests/app/test_import_hygiene.py.)"""
    graph = import_graph(Path(registry.__file__).resolve().parents[1], ("rewrite",))
    backend_modules = {path.split(":")[0] for path in registry.BACKENDS.values()}
    reach = {(m, t) for m, targets in graph.items() for t in targets if t in backend_modules and m != "rewrite.registry"}
    assert not reach - {(m, m) for m in backend_modules}, reach
