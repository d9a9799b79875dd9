"""Nothing leaks: the `openai` rewrite backend keeps the API key with the server it is meant
for, never shows a key, a bearer token or a URL's `user:pass@` in a message, warns about a key
sent in the clear, and turns a malformed address into one line; `notetaker summarize` never
downloads a model without saying what and how big first.

Every server here listens on 127.0.0.1; the one test about a non-loopback address hands the
backend an opener that records the request and fails it, so nothing leaves the machine.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

import rewrite.openai_compat as oc
from rewrite.base import Message, RewriteError
from rewrite.openai_compat import OpenAIBackend, api_url, key_in_clear, redact
from tests.app.conftest import CLI

KEY = "sk-test-4f9c2a7be1d04c55a3e0"
MESSAGES = (Message("user", "Sam writes it up."),)
STREAM = b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in (
    {"choices": [{"delta": {"content": "Hel"}, "finish_reason": None}]},
    {"choices": [{"delta": {"content": "lo."}, "finish_reason": "stop"}]},
)) + b"data: [DONE]\n\n"
MODELS = json.dumps({"object": "list", "data": [{"id": "served"}]}).encode()


# --- loopback servers that record what reaches them ----------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


@dataclass
class Server:
    url: str
    answer: Callable[[Seen], Answer]
    seen: list[Seen] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


class _Quiet(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[Seen], Answer]], Server]]:
    """Starts loopback servers answering with a function of the request; stops them after."""
    running: list[_Quiet] = []

    def start(answer: Callable[[Seen], Answer]) -> Server:
        httpd = _Quiet(("127.0.0.1", 0), BaseHTTPRequestHandler)
        server = Server(f"http://127.0.0.1:{httpd.server_address[1]}", answer)

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(self.command, self.path, dict(self.headers.items()),
                            self.rfile.read(length) if length else b"")
                server.seen.append(seen)
                reply = server.answer(seen)
                self.send_response(reply.status)
                for k, v in {**reply.headers, "Content-Length": str(len(reply.body))}.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_POST = _serve

        httpd.RequestHandlerClass = Handler
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        running.append(httpd)
        return server

    yield start
    for httpd in running:
        httpd.shutdown()
        httpd.server_close()


def api(seen: Seen) -> Answer:
    """A well-behaved OpenAI-compatible server."""
    if seen.path.endswith("/models"):
        return Answer(body=MODELS)
    return Answer(body=STREAM, headers={"Content-Type": "text/event-stream"})


def redirect(to: str, code: int = 307) -> Callable[[Seen], Answer]:
    return lambda seen: Answer(code, b"", {"Location": to + seen.path})


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("NOTETAKER_OPENAI_API_KEY", KEY)
    monkeypatch.setattr(oc, "_WARNED", set())
    return KEY


def one_line(e: pytest.ExceptionInfo) -> str:
    text = str(e.value)
    assert text and "\n" not in text and "Traceback" not in text, text
    return text


def assert_no_secret(text: str, *secrets: str) -> None:
    for secret in (KEY, *secrets):
        assert secret not in text, text
        assert secret[:10] not in text, text  # nor a cut-off piece of it


# --- 1. the key never goes to another origin -------------------------------------------------------


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_a_redirect_to_another_port_never_carries_the_key(serve, key, code):
    second = serve(api)
    first = serve(redirect(second.url, code))
    backend = OpenAIBackend(first.url)
    assert backend.model == "served"  # GET /v1/models, redirected
    assert [(s.method, s.path) for s in second.seen] == [("GET", "/v1/models")]
    assert first.seen[0].headers["Authorization"] == f"Bearer {KEY}"  # the key was there to leak
    assert all("Authorization" not in s.headers for s in second.seen)
    assert all(KEY not in json.dumps(s.headers) for s in second.seen)


@pytest.mark.parametrize("code", [307, 308])
def test_a_redirected_completion_keeps_its_body_but_not_the_key(serve, key, code):
    second = serve(api)
    first = serve(redirect(second.url, code))
    assert "".join(OpenAIBackend(first.url, "m").complete(MESSAGES, 5)) == "Hello."
    (post,) = second.seen
    assert (post.method, post.path) == ("POST", "/v1/chat/completions")
    assert json.loads(post.body)["messages"] == [{"role": "user", "content": "Sam writes it up."}]
    assert "Authorization" not in post.headers
    assert first.seen[0].headers["Authorization"] == f"Bearer {KEY}"


def test_a_same_origin_redirect_keeps_the_key(serve, key):
    def moved(seen: Seen) -> Answer:
        if seen.path.startswith("/v1/"):
            return Answer(307, b"", {"Location": seen.path.replace("/v1/", "/v2/", 1)})
        return api(seen)

    server = serve(moved)
    assert "".join(OpenAIBackend(server.url, "m").complete(MESSAGES, 5)) == "Hello."
    assert [s.path for s in server.seen] == ["/v1/chat/completions", "/v2/chat/completions"]
    assert all(s.headers.get("Authorization") == f"Bearer {KEY}" for s in server.seen)


def test_a_refusal_after_a_redirect_says_the_key_stays_home(serve, key):
    second = serve(lambda seen: Answer(401, b'{"error": {"message": "missing API key"}}'))
    first = serve(redirect(second.url))
    with pytest.raises(RewriteError) as e:
        OpenAIBackend(first.url, "m").complete(MESSAGES, 5)
    text = one_line(e)
    assert f"redirected to http://127.0.0.1:{second.port}" in text and "HTTP 401" in text
    assert f"sent only to http://127.0.0.1:{first.port}" in text
    assert "Authorization" not in second.seen[0].headers
    assert_no_secret(text)


@pytest.mark.parametrize("location, words", [
    ("ftp://127.0.0.1/v1/chat/completions", "not an http(s) address"),
    ("file:///etc/passwd", "HTTP 307"),
    ("http://[::1", "cannot be followed"),
])
def test_a_redirect_nowhere_sensible_is_one_line(serve, key, location, words):
    server = serve(lambda seen: Answer(307, b"", {"Location": location}))
    with pytest.raises(RewriteError) as e:
        OpenAIBackend(server.url, "m").complete(MESSAGES, 5)
    assert words in one_line(e)


def test_a_post_redirect_that_would_become_a_get_is_one_line(serve, key):
    second = serve(api)
    first = serve(redirect(second.url, 302))
    with pytest.raises(RewriteError) as e:
        OpenAIBackend(first.url, "m").complete(MESSAGES, 5)
    assert "HTTP 302 for /chat/completions, a redirect notetaker does not follow" in one_line(e)
    assert second.seen == []  # the completion was not turned into a GET elsewhere


# --- 2. a URL's userinfo is never shown -------------------------------------------------------------


@pytest.mark.parametrize("base", [
    "http://alice:hunter2-pw@127.0.0.1:8080",
    "http://alice:hunter2-pw@127.0.0.1:8080/v1/",
    "https://alice:p@ss:hunter2-pw@api.example.com/v1",  # an unescaped @ in the password
    "http://hunter2-pw@127.0.0.1:8080",
])
def test_a_base_url_with_userinfo_is_refused_without_echoing_it(key, base):
    with pytest.raises(RewriteError) as e:
        OpenAIBackend(base)
    text = one_line(e)
    assert "://***@" in text and "user name or password" in text and "NOTETAKER_OPENAI_API_KEY" in text
    assert_no_secret(text, "hunter2-pw", "alice", "ss:")


@pytest.mark.parametrize("text, shown", [
    ("http://u:p@127.0.0.1:8080/v1", "http://***@127.0.0.1:8080/v1"),
    ("see 'https://a:b@c@host/x' and http://plain.example/p@q", "see 'https://***@host/x' and http://***@q"),
    ("no url here: user@example.com", "no url here: user@example.com"),
])
def test_redact(text, shown):
    assert redact(text) == shown


def test_userinfo_a_server_puts_in_an_error_is_redacted(serve, key):
    body = {"error": {"message": "upstream http://admin:upstream-pw@10.9.8.7:9000/v1 refused"}}
    server = serve(lambda seen: Answer(502, json.dumps(body).encode()))
    with pytest.raises(RewriteError) as e:
        OpenAIBackend(server.url, "m").complete(MESSAGES, 5)
    text = one_line(e)
    assert "HTTP 502" in text and "upstream http://***@10.9.8.7:9000/v1 refused" in text
    assert_no_secret(text, "upstream-pw", "admin")


# --- 3. a key a server reflects is never shown ------------------------------------------------------


def reflecting(status: int, as_json: bool = True) -> Callable[[Seen], Answer]:
    """A server that quotes the Authorization header it got (and the key alone) in its error."""
    def answer(seen: Seen) -> Answer:
        auth = seen.headers.get("Authorization", "")
        message = f"invalid credentials: {auth!r} (key {auth.removeprefix('Bearer ')})"
        if as_json:
            return Answer(status, json.dumps({"error": {"message": message}}).encode())
        return Answer(status, message.encode(), {"Content-Type": "text/plain"})
    return answer


@pytest.mark.parametrize("status, as_json", [(401, True), (403, False), (500, True), (500, False), (400, True)])
def test_a_reflected_key_is_never_shown(serve, key, status, as_json):
    server = serve(reflecting(status, as_json))
    with pytest.raises(RewriteError) as e:
        OpenAIBackend(server.url, "m").complete(MESSAGES, 5)
    text = one_line(e)
    assert f"HTTP {status}" in text and "invalid credentials: 'Bearer ***' (key ***)" in text
    assert_no_secret(text)


def test_a_reflected_key_at_the_cut_is_not_shown_in_part(serve, key):
    # The server text is cut at 200 characters: scrubbing after the cut would miss a key cut in two.
    server = serve(lambda seen: Answer(500, ("x" * 170 + " " + KEY + " tail").encode(), {}))
    with pytest.raises(RewriteError) as e:
        OpenAIBackend(server.url, "m").complete(MESSAGES, 5)
    assert_no_secret(one_line(e))


def test_a_reflected_key_mid_stream_and_other_bearer_tokens_are_not_shown(serve, key):
    event = {"error": {"message": f"token {KEY} expired; upstream said Bearer ghp_abcdef123456"}}
    server = serve(lambda seen: Answer(body=f"data: {json.dumps(event)}\n\n".encode(),
                                       headers={"Content-Type": "text/event-stream"}))
    with pytest.raises(RewriteError) as e:
        list(OpenAIBackend(server.url, "m").complete(MESSAGES, 5))
    text = one_line(e)
    assert "token *** expired; upstream said Bearer ***" in text
    assert_no_secret(text, "ghp_abcdef")


def test_the_key_from_openai_api_key_is_scrubbed_too(serve, monkeypatch):
    monkeypatch.delenv("NOTETAKER_OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    server = serve(reflecting(401))
    with pytest.raises(RewriteError) as e:
        OpenAIBackend(server.url, "m").complete(MESSAGES, 5)
    text = one_line(e)
    assert "key in OPENAI_API_KEY was refused" in text
    assert_no_secret(text)


# --- 4. a key sent in the clear is warned about, once ----------------------------------------------


@pytest.mark.parametrize("url, clear", [
    ("http://127.0.0.1:8080/v1", False),
    ("http://127.45.6.7/v1", False),
    ("http://[::1]:8080/v1", False),
    ("http://[::ffff:127.0.0.1]:8080/v1", False),
    ("http://localhost:11434/v1", False),
    ("http://LocalHost./v1", False),
    ("https://api.example.com/v1", False),
    ("https://192.0.2.10/v1", False),
    ("http://192.0.2.10:8080/v1", True),
    ("http://10.0.0.5/v1", True),
    ("http://[2001:db8::1]:8000/v1", True),
    ("http://[::ffff:192.0.2.1]/v1", True),
    ("http://gpu-box.lan:8000/v1", True),
    ("http://127.example.com/v1", True),  # a name that starts like loopback is not loopback
])
def test_which_addresses_get_the_key_in_the_clear(url, clear):
    assert key_in_clear(url) is clear


class _NoNetwork:
    """An opener that records what it would send and fails: nothing leaves this machine."""

    def __init__(self) -> None:
        self.requests: list[urllib.request.Request] = []

    def open(self, request, timeout=None):
        self.requests.append(request)
        raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))


def test_a_key_over_plain_http_to_another_machine_is_warned_about_once(key):
    lines: list[str] = []
    backend = OpenAIBackend("http://192.0.2.10:8080", "m", report=lines.append)  # TEST-NET-1: never used
    backend._opener = _NoNetwork()
    for _ in range(3):
        with pytest.raises(RewriteError):
            backend.complete(MESSAGES, 5)
    again = OpenAIBackend("http://192.0.2.10:8080/v1", "m", report=lines.append)
    again._opener = _NoNetwork()
    with pytest.raises(RewriteError):
        again.complete(MESSAGES, 5)
    assert len(backend._opener.requests) == 3  # the key went out each time; the warning once
    assert lines == ["the API key in NOTETAKER_OPENAI_API_KEY is sent unencrypted over http:// to "
                     "192.0.2.10:8080; anyone on the network between can read it (use https:// for a server "
                     "on another machine)"]
    other = OpenAIBackend("http://192.0.2.11:8080", "m", report=lines.append)
    other._opener = _NoNetwork()
    with pytest.raises(RewriteError):
        other.complete(MESSAGES, 5)
    assert len(lines) == 2 and "192.0.2.11:8080" in lines[1]


def test_the_warning_is_one_stderr_line_by_default(key, capsys):
    backend = OpenAIBackend("http://192.0.2.10:8080", "m")
    backend._opener = _NoNetwork()
    with pytest.raises(RewriteError):
        backend.complete(MESSAGES, 5)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("notetaker: the API key in NOTETAKER_OPENAI_API_KEY is sent")
    assert_no_secret(err)


def test_no_warning_without_a_key_or_on_loopback(serve, monkeypatch):
    monkeypatch.setattr(oc, "_WARNED", set())
    for name in oc.KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    lines: list[str] = []
    backend = OpenAIBackend("http://192.0.2.10:8080", "m", report=lines.append)
    backend._opener = _NoNetwork()
    with pytest.raises(RewriteError):
        backend.complete(MESSAGES, 5)
    assert "Authorization" not in dict(backend._opener.requests[0].header_items())
    monkeypatch.setenv("NOTETAKER_OPENAI_API_KEY", KEY)
    server = serve(api)
    assert "".join(OpenAIBackend(server.url, "m", report=lines.append).complete(MESSAGES, 5)) == "Hello."
    assert lines == []


# --- 5. a malformed address is one line ------------------------------------------------------------


@pytest.mark.parametrize("base, words", [
    ("http://[::1", "not a valid URL (invalid ipv6 url)"),
    ("http://[::1]:99999", "not a valid URL (port out of range"),
    ("http://127.0.0.1:80a0", "not a valid URL (port could not be cast"),
    ("http://:8080", "is not an http(s) URL"),
])
def test_a_malformed_base_url_is_one_line(base, words):
    with pytest.raises(RewriteError) as e:
        OpenAIBackend(base)
    text = one_line(e)
    assert words in text and repr(base) in text


def test_api_url_still_normalises_good_addresses():
    assert api_url("http://[::1]:8080/") == "http://[::1]:8080/v1"
    assert api_url("https://api.example.com/openai/v1") == "https://api.example.com/openai/v1"


# --- the CLI: one line, exit 2, nothing secret --------------------------------------------------------




def one_line_exit_2(run, *words: str) -> str:
    assert run.rc == 2, run.err
    assert run.err.count("\n") == 1 and run.err.startswith("notetaker: "), run.err
    assert "Traceback" not in run.err and "internal error" not in run.err, run.err
    for w in words:
        assert w in run.err, (w, run.err)
    return run.err


def summarize_openai(cli: CLI, base: str, key: str | None = KEY):
    env = {"NOTETAKER_OPENAI_BASE_URL": base, "OPENAI_API_KEY": ""}
    if key:
        env["NOTETAKER_OPENAI_API_KEY"] = key
    return cli("summarize", "1", "--backend", "openai", "--model", "m", env=env, timeout=300)


@pytest.mark.parametrize("status", [401, 500])
def test_cli_never_prints_a_reflected_key(serve, seeded, status):
    server = serve(reflecting(status))
    run = summarize_openai(seeded, server.url)
    one_line_exit_2(run, f"HTTP {status}", "Bearer ***")
    assert server.seen and server.seen[0].headers["Authorization"] == f"Bearer {KEY}"
    assert_no_secret(run.out + run.err)


def test_cli_redirect_to_another_port_drops_the_key(serve, seeded):
    second = serve(reflecting(401))
    first = serve(redirect(second.url))
    run = summarize_openai(seeded, first.url)
    one_line_exit_2(run, "redirected to", "HTTP 401", "sent only to")
    assert [s.method for s in second.seen] == ["POST"] and "Authorization" not in second.seen[0].headers
    assert_no_secret(run.out + run.err)


@pytest.mark.parametrize("base, words", [
    ("http://alice:hunter2-pw@127.0.0.1:9/v1", ("'http://***@127.0.0.1:9/v1'", "user name or password")),
    ("http://[::1", ("not a valid URL",)),
    ("http://127.0.0.1:99999", ("port out of range",)),
])
def test_cli_bad_base_urls_are_one_line(seeded, base, words):
    run = summarize_openai(seeded, base)
    one_line_exit_2(run, *words)
    assert_no_secret(run.out + run.err, "hunter2-pw", "alice")


# --- 6. summarize never downloads silently -----------------------------------------------------------


def test_summarize_says_what_it_fetches_and_how_big_when_not_on_a_terminal(seeded):
    # The default LLM asked for by name, not downloaded: mlx-lm would fetch it as it loads.
    # The hub is offline, so the fetch then fails.
    run = seeded("summarize", "1", "--backend", "mlx", timeout=300)
    assert run.rc == 2 and "Traceback" not in run.err, run.err
    notice, error = run.err.splitlines()
    assert notice == "notetaker: downloading llama-3.2-3b (mlx-community/Llama-3.2-3B-Instruct-4bit, 1.7 GB)"
    assert error.startswith("notetaker: ") and "hub" in error


@pytest.mark.parametrize("args", [[], ["--backend", "none"]])
def test_summarize_with_no_rewrite_model_set_up_says_how_to_set_one_up(seeded, args):
    # Nothing downloaded, no server running: the default is none, as doctor says; nothing is
    # fetched behind the user's back (issue 17: it used to start a 1.7 GB download).
    run = seeded("summarize", "1", *args, timeout=300)
    assert run.rc == 2 and "Traceback" not in run.err, run.err
    [line] = run.err.splitlines()
    assert line.startswith("notetaker: no summary of meeting 1") and "no rewrite model is set up" in line
    assert "models pull" in line and "models add" in line and "server" in line
    assert "downloading" not in run.err
    doctor = seeded("doctor", "--json")
    assert json.loads(doctor.out)["plan"]["rewrite_backend"] == "none"


def test_a_hub_repo_outside_the_catalogue_is_announced_with_no_size(seeded):
    run = seeded("summarize", "1", "--backend", "mlx", "--model", "acme/llm-tiny", timeout=300)
    assert run.rc == 2 and "Traceback" not in run.err, run.err
    assert run.err.splitlines()[0] == ("notetaker: downloading acme/llm-tiny (acme/llm-tiny, size unknown until "
                                       "it is fetched)")


@pytest.mark.parametrize("args, env", [
    (["--backend", "mlx", "--model", "/nonexistent/model/folder"], None),  # a folder, not a download
    ([], {"NOTETAKER_ALLOW_DOWNLOAD": "0"}),  # downloads off: nothing is fetched, nothing announced
])
def test_no_notice_when_nothing_will_be_fetched(seeded, args, env):
    run = seeded("summarize", "1", *args, env=env, timeout=300)
    one_line_exit_2(run)
    assert "downloading" not in run.err


def test_the_plans_catalogue_pull_is_announced_off_a_terminal(tmp_path, capsys, monkeypatch):
    """`fetch_planned`'s pull of a catalogue model the plan needs (`--model llama-3.2-1b`), with
    the hub offline: the notice, with its size, comes before the attempt."""
    import huggingface_hub.constants as c

    from asr.base import ModelNotFoundError
    from notetaker.budget import gb
    from notetaker.catalogue import by_name
    from notetaker.prepare import _pull_missing
    from notetaker.config import Settings

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    entry = by_name("llama-3.2-1b")
    plan = SimpleNamespace(asr=None, rewrite=SimpleNamespace(name=entry.name, downloaded=False),
                           rewrite_backend="mlx")
    with pytest.raises(ModelNotFoundError):
        _pull_missing(Settings(home=tmp_path / "home"), [plan.asr, plan.rewrite])
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"notetaker: downloading llama-3.2-1b ({entry.repo}, {gb(entry.download_bytes)})"]
