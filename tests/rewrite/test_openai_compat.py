"""The `openai` backend against a real `mlx_lm.server` serving the tiny model (the same
greedy text as the in-process `mlx` backend), and against a small scripted HTTP server for
headers, odd replies and errors."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rewrite.base import Message, RewriteError
from rewrite.openai_compat import DEFAULT_CONTEXT, OpenAIBackend, api_url
from tests.rewrite.tiny_llm import free_port

MESSAGES = (
    Message("system", "You summarise meetings."),
    Message("user", "Anya owns the migration plan. Ben reviews the database changes by Friday."),
)


def _one_line(e: pytest.ExceptionInfo) -> str:
    text = str(e.value)
    assert text and "\n" not in text and "Traceback" not in text
    return text


# --- against mlx_lm.server ---------------------------------------------------------------


def test_streams_the_same_greedy_text_as_the_mlx_backend(llm_server, mlx_backend):
    backend = OpenAIBackend(llm_server.url + "/v1", str(llm_server.folder.resolve()))
    for n in (40, 5):
        pieces = list(backend.complete(MESSAGES, max_tokens=n))
        local = list(mlx_backend.complete(MESSAGES, max_tokens=n))
        assert len(pieces) > n // 2  # streamed piece by piece
        assert "".join(pieces) == "".join(local)
        assert backend.last_finish_reason == mlx_backend.last_finish_reason == "length"


def test_discovers_the_served_model(llm_server):
    backend = OpenAIBackend(llm_server.url + "/")  # without /v1, with a slash
    assert backend.list_models() == [str(llm_server.folder.resolve())]
    assert backend.model == str(llm_server.folder.resolve())
    caps = backend.capabilities
    assert (caps.backend, caps.model, caps.context_tokens) == ("openai", backend.model, DEFAULT_CONTEXT)
    assert "".join(backend.complete(MESSAGES, 3))


def test_an_unknown_model_lists_what_the_server_offers(llm_server):
    backend = OpenAIBackend(llm_server.url, "no-such/model")
    with pytest.raises(RewriteError) as e:
        backend.complete(MESSAGES, 5)
    text = _one_line(e)
    assert "has no model 'no-such/model'" in text and str(llm_server.folder.resolve()) in text


def test_count_tokens_is_a_character_estimate():
    backend = OpenAIBackend("http://127.0.0.1:1", "m", context_tokens=4096)
    assert [backend.count_tokens(t) for t in ("", "abc", "abcd", "abcde")] == [0, 1, 1, 2]
    assert backend.capabilities.context_tokens == 4096


@pytest.mark.parametrize("given, url", [
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080/v1"),
    ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/v1"),
    ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1"),
    ("https://example.com/openai/v1/", "https://example.com/openai/v1"),
    (" http://localhost:11434 ", "http://localhost:11434/v1"),
])
def test_base_url_with_or_without_v1(given, url):
    assert api_url(given) == url


@pytest.mark.parametrize("bad", ["127.0.0.1:8080", "ftp://host/v1", "http://", ""])
def test_a_base_url_that_is_not_http_is_one_line(bad):
    with pytest.raises(RewriteError) as e:
        OpenAIBackend(bad)
    assert "is not an http(s) URL" in _one_line(e)


def test_an_unreachable_server_is_one_line():
    port = free_port()  # just freed: nothing listens there
    with pytest.raises(RewriteError) as e:
        OpenAIBackend(f"http://127.0.0.1:{port}", "m").complete(MESSAGES, 5)
    assert _one_line(e) == f"cannot reach the rewrite server at http://127.0.0.1:{port}/v1: connection refused"
    with pytest.raises(RewriteError) as e:
        _ = OpenAIBackend(f"http://127.0.0.1:{port}").capabilities  # model discovery
    assert "connection refused" in _one_line(e)


# --- against a scripted server -------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: bytes | list[bytes] = b""  # a list is sent piece by piece, flushed
    content_type: str = "application/json"
    delay: float = 0.0


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: dict | None


@dataclass
class ScriptedServer:
    url: str
    routes: dict[tuple[str, str], Reply] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)


def _handler(server: ScriptedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep the test output clean
            pass

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            server.requests.append(Recorded(method, self.path, dict(self.headers.items()),
                                            json.loads(raw) if raw else None))
            reply = server.routes.get((method, self.path), Reply(404, b'{"error": "Not Found"}'))
            time.sleep(reply.delay)
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.end_headers()
            for piece in reply.body if isinstance(reply.body, list) else [reply.body]:
                self.wfile.write(piece)
                self.wfile.flush()

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

    return Handler


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        # A client that timed out leaves its handler writing into a closed socket; that
        # handler's traceback would land in whichever test is running by then.
        pass


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    httpd = _QuietServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server = ScriptedServer(f"http://127.0.0.1:{httpd.server_address[1]}")
    httpd.RequestHandlerClass = _handler(server)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield server
    httpd.shutdown()
    httpd.server_close()


def _sse(*events: dict | str) -> list[bytes]:
    return [f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n".encode() for e in events]


def _chunk(content: str | None, finish: str | None = None) -> dict:
    delta = {} if content is None else {"content": content}
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


CHAT = ("POST", "/v1/chat/completions")
MODELS = ("GET", "/v1/models")
GOOD_STREAM = Reply(body=[b": keep-alive\n\n", *_sse({"choices": [{"delta": {"role": "assistant"}}]}, _chunk("Hel"),
                                                          _chunk("lo."), _chunk(None, "stop"), "[DONE]")],
                    content_type="text/event-stream")


def test_the_request_it_sends(scripted):
    scripted.routes[CHAT] = GOOD_STREAM
    backend = OpenAIBackend(scripted.url, "m-1")
    assert list(backend.complete(MESSAGES, max_tokens=7, temperature=0.2)) == ["Hel", "lo."]
    assert backend.last_finish_reason == "stop"
    (req,) = scripted.requests
    assert req.body == {"model": "m-1", "messages": [{"role": m.role, "content": m.content} for m in MESSAGES],
                        "max_tokens": 7, "temperature": 0.2, "stream": True}
    assert req.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("env, expect", [
    ({}, None),
    ({"OPENAI_API_KEY": "sk-openai"}, "Bearer sk-openai"),
    ({"NOTETAKER_OPENAI_API_KEY": "sk-ours"}, "Bearer sk-ours"),
    ({"NOTETAKER_OPENAI_API_KEY": "sk-ours", "OPENAI_API_KEY": "sk-openai"}, "Bearer sk-ours"),
])
def test_the_api_key_comes_from_the_environment(scripted, monkeypatch, env, expect):
    for name in ("NOTETAKER_OPENAI_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    scripted.routes[CHAT] = GOOD_STREAM
    scripted.routes[MODELS] = Reply(body=b'{"object": "list", "data": [{"id": "only"}]}')
    backend = OpenAIBackend(scripted.url)
    assert "".join(backend.complete(MESSAGES, 5)) == "Hello."
    assert [r.path for r in scripted.requests] == ["/v1/models", "/v1/chat/completions"]
    assert scripted.requests[1].body["model"] == "only"  # the one it serves
    for r in scripted.requests:
        assert r.headers.get("Authorization") == expect


def test_a_server_with_several_models_and_none_named_is_one_line_naming_them(scripted):
    # Never "the first listed": a model nobody chose would write the summary.
    scripted.routes[MODELS] = Reply(body=b'{"object": "list", "data": [{"id": "first"}, {"id": "second"}]}')
    scripted.routes[CHAT] = GOOD_STREAM
    with pytest.raises(RewriteError) as e:
        OpenAIBackend(scripted.url).complete(MESSAGES, 5)
    assert "serves 2 models (first, second)" in _one_line(e)
    assert [r.path for r in scripted.requests] == ["/v1/models"]  # nothing was asked of a guess
    assert "".join(OpenAIBackend(scripted.url, "second").complete(MESSAGES, 5)) == "Hello."


def test_a_refused_key_is_one_line_without_the_key(scripted, monkeypatch):
    monkeypatch.setenv("NOTETAKER_OPENAI_API_KEY", "sk-secret")
    scripted.routes[CHAT] = Reply(401, b'{"error": {"message": "Incorrect API key provided"}}')
    with pytest.raises(RewriteError) as e:
        OpenAIBackend(scripted.url, "m").complete(MESSAGES, 5)
    text = _one_line(e)
    assert "HTTP 401" in text and "key in NOTETAKER_OPENAI_API_KEY was refused" in text
    assert "Incorrect API key" in text and "sk-secret" not in text
    monkeypatch.delenv("NOTETAKER_OPENAI_API_KEY")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(RewriteError) as e:
        OpenAIBackend(scripted.url, "m").complete(MESSAGES, 5)
    assert "set NOTETAKER_OPENAI_API_KEY" in _one_line(e)


def test_an_empty_model_list_falls_back_to_the_server_default(scripted):
    # What mlx_lm.server does before anything was downloaded to the hub cache.
    scripted.routes[MODELS] = Reply(body=b"")
    scripted.routes[CHAT] = GOOD_STREAM
    backend = OpenAIBackend(scripted.url)
    assert backend.capabilities.model == "(server default)"
    assert "".join(backend.complete(MESSAGES, 5)) == "Hello."
    assert "model" not in scripted.requests[-1].body


def test_a_server_that_does_not_stream(scripted):
    body = {"choices": [{"message": {"role": "assistant", "content": "All at once."}, "finish_reason": "length"}]}
    scripted.routes[CHAT] = Reply(body=json.dumps(body).encode())
    backend = OpenAIBackend(scripted.url, "m")
    assert list(backend.complete(MESSAGES, 5)) == ["All at once."]
    assert backend.last_finish_reason == "length"


def test_an_event_stream_labelled_as_something_else(scripted):
    scripted.routes[CHAT] = Reply(body=GOOD_STREAM.body, content_type="text/plain")
    assert "".join(OpenAIBackend(scripted.url, "m").complete(MESSAGES, 5)) == "Hello."


GARBAGE = {
    "html page": (Reply(body=b"<html><body>It works!</body></html>", content_type="text/html"),
                  "sent a reply that is not JSON: <html><body>It works!</body></html>"),
    "empty reply": (Reply(body=b""), "sent an empty reply"),
    "json without choices": (Reply(body=b'{"result": "ok"}'), "without choices[0].message"),
    "event not json": (Reply(body=_sse(_chunk("a"), "{not json"), content_type="text/event-stream"),
                       "sent a stream event that is not JSON: {not json"),
    "cut off": (Reply(body=_sse(_chunk("a"), _chunk("b")), content_type="text/event-stream"),
                "closed the stream before the reply ended"),
    "error mid-stream": (Reply(body=_sse(_chunk("a"), {"error": {"message": "out of memory"}}),
                               content_type="text/event-stream"), "failed mid-reply: out of memory"),
    "http 500": (Reply(500, b'{"error": {"message": "CUDA error: device-side assert"}}'),
                 "answered HTTP 500 for /chat/completions: CUDA error: device-side assert"),
    "http 400": (Reply(400, b'{"detail": "max_tokens is too large"}'), "HTTP 400 for /chat/completions: max_tokens"),
}


@pytest.mark.parametrize("case", sorted(GARBAGE))
def test_garbage_replies_are_one_line(scripted, case):
    reply, expect = GARBAGE[case]
    scripted.routes[CHAT] = reply
    with pytest.raises(RewriteError) as e:
        list(OpenAIBackend(scripted.url, "m").complete(MESSAGES, 5))
    assert expect in _one_line(e)


def test_a_404_model_is_named_with_what_is_offered(scripted):
    scripted.routes[CHAT] = Reply(404, b'{"error": {"message": "model \\"llama3\\" not found, try pulling it first"}}')
    scripted.routes[MODELS] = Reply(body=b'{"data": [{"id": "qwen3:4b"}, {"id": "llama3.2:3b"}]}')
    with pytest.raises(RewriteError) as e:
        OpenAIBackend(scripted.url, "llama3").complete(MESSAGES, 5)
    assert _one_line(e).endswith("has no model 'llama3'; it offers: qwen3:4b, llama3.2:3b")


def test_a_server_without_the_api_is_one_line(scripted):
    with pytest.raises(RewriteError) as e:  # every path answers 404 "Not Found"
        _ = OpenAIBackend(scripted.url).capabilities
    assert "has no /models endpoint (HTTP 404)" in _one_line(e)


def test_a_silent_server_times_out_in_one_line(scripted):
    scripted.routes[CHAT] = Reply(body=GOOD_STREAM.body, content_type="text/event-stream", delay=1.0)
    with pytest.raises(RewriteError) as e:
        OpenAIBackend(scripted.url, "m", timeout=0.3).complete(MESSAGES, 5)
    assert "did not answer within 0.3 s" in _one_line(e)


def test_a_stream_that_stalls_times_out_in_one_line(scripted):
    stall: list[bytes] = [*_sse(_chunk("a"))]

    class Stalling(list):  # sends the first event, then nothing for a second
        def __iter__(self) -> Iterator[bytes]:
            yield from stall
            time.sleep(1.0)

    scripted.routes[CHAT] = Reply(body=Stalling(), content_type="text/event-stream")
    stream = OpenAIBackend(scripted.url, "m", timeout=0.3).complete(MESSAGES, 5)
    assert next(stream) == "a"
    with pytest.raises(RewriteError) as e:
        next(stream)
    assert "sent nothing for 0.3 s mid-reply" in _one_line(e)


def test_no_network_before_it_is_needed():
    backend = OpenAIBackend(f"http://127.0.0.1:{free_port()}")  # nothing listens: no error yet
    assert backend.count_tokens("four") == 1
    backend.close()
