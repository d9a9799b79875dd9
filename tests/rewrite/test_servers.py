"""Servers people already run (issue 17): a real `mlx_lm.server` on loopback is found at the
port `openai_detect` names, listed by `doctor` with the model it serves, planned as the
rewrite backend when no model is downloaded, and used by `summarize` with that model named.
A port with some other web service, or nobody, is not a server of ours."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rewrite.base import RewriteError
from rewrite.openai_compat import choose_model, detect_servers
from tests.app.conftest import CLI, seeded  # noqa: F401  (fixture)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _NotAnLlm(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802  (http.server's name)
        body = b"<html>a dashboard</html>"
        self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def web_page():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotAnLlm)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _port(llm_server) -> int:
    return int(llm_server.url.rsplit(":", 1)[1])


def test_a_running_server_is_found_with_what_it_serves_and_nothing_else_is(llm_server, web_page):
    served = str(llm_server.folder.resolve())
    found = detect_servers([_closed_port(), web_page, _port(llm_server)])
    assert [(s.url, s.models) for s in found] == [(llm_server.url + "/v1", (served,))]
    assert found[0].label == "a server"  # not one of the usual ports
    assert detect_servers([]) == []


def test_the_model_is_chosen_only_when_there_is_one_to_choose():
    assert choose_model(["llama3.2:1b"], "http://127.0.0.1:11434/v1") == "llama3.2:1b"
    assert choose_model([], "http://127.0.0.1:8080/v1") == ""  # the server's own default
    with pytest.raises(RewriteError) as e:
        choose_model(["qwen2.5:7b", "llama3.2:1b"], "http://127.0.0.1:11434/v1")
    assert "serves 2 models (qwen2.5:7b, llama3.2:1b)" in str(e.value) and "choose one" in str(e.value)


def test_doctor_the_plan_and_summarize_agree_on_a_running_server(seeded, llm_server):
    env = {"NOTETAKER_OPENAI_DETECT": str(_port(llm_server))}
    served = str(llm_server.folder.resolve())
    report = json.loads(seeded("doctor", "--json", env=env).out)
    assert report["servers"]["found"] == [{"url": llm_server.url + "/v1", "label": "a server", "models": [served]}]
    plan = report["plan"]
    assert plan["rewrite_backend"] == "openai" and plan["server_model"] == served
    assert plan["server"]["url"] == llm_server.url + "/v1"
    text = seeded("doctor", env=env).out
    assert f"server     a server at {llm_server.url}/v1 (serves {served})" in text

    run = seeded("summarize", "1", env=env, timeout=300)
    assert run.rc == 0, run.err
    assert f"summary stored for meeting 1 (openai/{served}" in run.err  # the model is named

    # Looked for nowhere: none is planned, and summarize says how to set one up.
    off = seeded("summarize", "1", env={"NOTETAKER_OPENAI_DETECT": "off"})
    assert off.rc == 2 and "no rewrite model is set up" in off.err


def test_the_openai_backend_asked_for_uses_the_server_found(seeded, llm_server):
    env = {"NOTETAKER_OPENAI_DETECT": f"{_closed_port()},{_port(llm_server)}"}
    run = seeded("summarize", "1", "--backend", "openai", env=env, timeout=300)
    assert run.rc == 0, run.err
    # None found: one line that says where it looked.
    run = seeded("summarize", "1", "--backend", "openai", env={"NOTETAKER_OPENAI_DETECT": str(_closed_port())})
    assert run.rc == 2 and len(run.err.splitlines()) == 1
    assert "openai_base_url" in run.err and "no server answers on ports" in run.err
