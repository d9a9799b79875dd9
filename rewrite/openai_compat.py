"""The `openai` rewrite backend: any OpenAI-compatible chat server (mlx_lm.server, vLLM,
llama.cpp's llama-server, Ollama, hosted APIs), over HTTP with the standard library only.

Replies stream as server-sent events from `POST {base}/v1/chat/completions` with
`"stream": true`. An API key is read from the environment only — NOTETAKER_OPENAI_API_KEY,
else OPENAI_API_KEY — and sent as a Bearer token; it never comes from config files or
flags, so it cannot end up in them or in shell history.

Servers do not say how they tokenize, so `count_tokens` is an estimate (4 characters a
token, rounded up) and the context is what the constructor is told (8192 if nothing).
"""

from __future__ import annotations

import json
import math
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from typing import Any

from rewrite.base import Capabilities, Message, RewriteBackend, RewriteError

DEFAULT_CONTEXT = 8192  # conservative: most served models hold more
KEY_VARIABLES = ("NOTETAKER_OPENAI_API_KEY", "OPENAI_API_KEY")
CHARS_PER_TOKEN = 4  # the usual rule of thumb for English with a modern BPE vocabulary
_ERROR_CHARS = 200  # of a server's error text quoted in ours


class _NoModelList(RewriteError):
    """The server answered /models, but with no usable list."""


def api_url(base_url: str) -> str:
    """`base_url` normalised to end in /v1 (accepted with or without it, and a slash)."""
    url = base_url.strip().rstrip("/")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RewriteError(f"the rewrite server address {base_url!r} is not an http(s) URL, "
                           "e.g. http://127.0.0.1:8080")
    return url if parts.path.endswith("/v1") else url + "/v1"


def api_key() -> tuple[str, str] | None:
    """(the variable it came from, the key) from the environment, or None."""
    for name in KEY_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value:
            return name, value
    return None


class OpenAIBackend(RewriteBackend):
    name = "openai"

    def __init__(self, base_url: str, model: str | None = None, *, timeout: float = 60.0,
                 context_tokens: int | None = None):
        """No network here: a missing `model` is asked of the server (GET /v1/models, the
        first listed) by the first call that needs it."""
        self.base = api_url(base_url)
        self.timeout = timeout
        self._opener = _opener(self.base)
        self._model = model
        self._context = context_tokens or DEFAULT_CONTEXT
        self.last_finish_reason: str | None = None  # "stop", "length", ... as the server said

    @property
    def model(self) -> str:
        """The model asked for: the one named, else the server's first listed, else ""
        (the server's own default) where the server lists none."""
        if self._model is None:
            try:
                models = self.list_models()
            except _NoModelList:
                # mlx_lm.server answers /v1/models with an empty body until something has
                # been downloaded to the hub cache; its served model is then the default.
                models = []
            self._model = models[0] if models else ""
        return self._model

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(backend=self.name, model=self.model or "(server default)", context_tokens=self._context)

    def count_tokens(self, text: str) -> int:
        """An estimate (4 characters a token, rounded up): the server does not say how it
        tokenizes."""
        return math.ceil(len(text) / CHARS_PER_TOKEN)

    def list_models(self) -> list[str]:
        """The model ids the server offers, in its order."""
        with self._open("GET", "/models") as reply:
            raw = _read_body(reply, self.base)
        try:
            body = json.loads(raw)
        except ValueError:
            what = f"a reply that is not JSON: {_clip(raw.decode('utf-8', errors='replace'))}" if raw.strip() else (
                "an empty reply")
            raise _NoModelList(f"the rewrite server at {self.base} answered /models with {what}") from None
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise _NoModelList(f"the rewrite server at {self.base} answered /models without a model list")
        return [str(m["id"]) for m in data if isinstance(m, dict) and "id" in m]

    def complete(self, messages: Sequence[Message], max_tokens: int, temperature: float = 0.0) -> Iterator[str]:
        if max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        if not messages:
            raise ValueError("complete() needs at least one message")
        body: dict[str, Any] = {
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
        }
        if self.model:
            body["model"] = self.model
        reply = self._open("POST", "/chat/completions", body)
        return self._stream(reply)

    def _stream(self, reply: Any) -> Iterator[str]:
        self.last_finish_reason = None
        with reply:
            if reply.headers.get_content_type() == "text/event-stream":
                lines: Iterator[bytes] = self._lines(reply)
            else:
                raw = _read_body(reply, self.base)
                if b"\ndata:" not in b"\n" + raw:
                    # A server that ignored "stream": the whole reply as one JSON object.
                    yield from self._whole(raw)
                    return
                lines = iter(raw.splitlines())  # an event stream with another content type
            done = False
            for data in _events(lines):
                if data == "[DONE]":
                    done = True
                    break
                piece = self._delta(data)
                if piece:
                    yield piece
        if not done and self.last_finish_reason is None:
            raise RewriteError(f"the rewrite server at {self.base} closed the stream before the reply ended")

    def _whole(self, raw: bytes) -> Iterator[str]:
        body = _json(raw, self.base)
        try:
            choice = body["choices"][0]
            content = choice["message"]["content"]
        except (KeyError, IndexError, TypeError):
            if isinstance(body, dict) and "error" in body:
                raise RewriteError(f"the rewrite server at {self.base} failed: {_error_text(body)}") from None
            raise RewriteError(f"the rewrite server at {self.base} sent a reply without choices[0].message: "
                               f"{_clip(raw.decode('utf-8', errors='replace'))}") from None
        self.last_finish_reason = choice.get("finish_reason")
        if isinstance(content, str) and content:
            yield content

    def _lines(self, reply: Any) -> Iterator[bytes]:
        while True:
            try:
                raw = reply.readline()
            except TimeoutError:
                raise RewriteError(f"the rewrite server at {self.base} sent nothing for {self.timeout:g} s "
                                   "mid-reply (a slow model needs a longer timeout)") from None
            except OSError as e:
                raise RewriteError(f"the connection to the rewrite server at {self.base} broke mid-reply: "
                                   f"{_reason(e)}") from None
            if not raw:
                return
            yield raw

    def _delta(self, data: str) -> str:
        try:
            chunk = json.loads(data)
        except ValueError:
            raise RewriteError(f"the rewrite server at {self.base} sent a stream event that is not JSON: "
                               f"{_clip(data)}") from None
        if not isinstance(chunk, dict):
            raise RewriteError(f"the rewrite server at {self.base} sent an unexpected event: {_clip(data)}")
        if "error" in chunk:
            raise RewriteError(f"the rewrite server at {self.base} failed mid-reply: {_error_text(chunk)}")
        choices = chunk.get("choices") or []
        if not choices or not isinstance(choices[0], dict):
            return ""  # e.g. a usage-only event
        choice = choices[0]
        if choice.get("finish_reason"):
            self.last_finish_reason = str(choice["finish_reason"])
        delta = choice.get("delta") or {}
        content = delta.get("content") if isinstance(delta, dict) else None
        return content if isinstance(content, str) else ""

    def _open(self, method: str, path: str, body: dict | None = None) -> Any:
        """An open HTTP reply (2xx), or a one-line RewriteError."""
        url = self.base + path
        headers = {"Accept": "text/event-stream, application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        key = api_key()
        if key:
            headers["Authorization"] = f"Bearer {key[1]}"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            return self._opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            raise self._http_error(e, path, key[0] if key else None) from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, TimeoutError):
                raise RewriteError(f"cannot reach the rewrite server at {self.base}: "
                                   f"no answer within {self.timeout:g} s") from None
            raise RewriteError(f"cannot reach the rewrite server at {self.base}: {_reason(e.reason)}") from None
        except TimeoutError:
            raise RewriteError(f"the rewrite server at {self.base} did not answer within {self.timeout:g} s") from None
        except OSError as e:  # connection reset while reading the headers, and the like
            raise RewriteError(f"cannot reach the rewrite server at {self.base}: {_reason(e)}") from None

    def _http_error(self, e: urllib.error.HTTPError, path: str, key_variable: str | None) -> RewriteError:
        try:
            detail = _error_text(_parse(e.read()))
        except Exception:  # the error body itself failed to arrive
            detail = ""
        finally:
            e.close()
        said = f": {detail}" if detail else ""
        where = f"the rewrite server at {self.base}"
        if e.code in (401, 403):
            hint = f"the key in {key_variable} was refused" if key_variable else (
                "it needs an API key: set NOTETAKER_OPENAI_API_KEY")
            return RewriteError(f"{where} refused the request (HTTP {e.code}); {hint}{said}")
        if e.code == 404 and path == "/chat/completions":
            offered = self._offered()
            if offered is not None and self._model and self._model not in offered:
                listing = ", ".join(offered[:10]) + (" ..." if len(offered) > 10 else "") if offered else "none"
                return RewriteError(f"{where} has no model {self._model!r}; it offers: {listing}")
            return RewriteError(f"{where} answered HTTP 404 for {path}{said}")
        if e.code == 404:
            return RewriteError(f"{where} has no {path} endpoint (HTTP 404): is it an OpenAI-compatible server?")
        return RewriteError(f"{where} answered HTTP {e.code} for {path}{said}")

    def _offered(self) -> list[str] | None:
        try:
            return self.list_models()
        except RewriteError:
            return None


def _opener(base: str) -> urllib.request.OpenerDirector:
    """urllib's opener; a server on this machine is never reached through an HTTP proxy
    from the environment (urllib would otherwise send loopback requests to it)."""
    host = urllib.parse.urlsplit(base).hostname or ""
    if host == "localhost" or host.startswith("127.") or host == "::1":
        return urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener()


def _events(lines: Iterator[bytes]) -> Iterator[str]:
    """The `data:` payloads of a server-sent event stream (comments such as keep-alives and
    other fields skipped)."""
    for raw in lines:
        line = raw.decode("utf-8", errors="replace").strip()
        if line.startswith("data:"):
            yield line[len("data:"):].strip()


def _read_body(reply: Any, base: str) -> bytes:
    try:
        return reply.read()
    except TimeoutError:
        raise RewriteError(f"the rewrite server at {base} stopped answering mid-reply") from None
    except Exception as e:  # OSError, http.client.IncompleteRead
        raise RewriteError(f"the connection to the rewrite server at {base} broke: {_reason(e)}") from None


def _json(raw: bytes, base: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        if not raw.strip():
            raise RewriteError(f"the rewrite server at {base} sent an empty reply") from None
        text = raw.decode("utf-8", errors="replace")
        raise RewriteError(f"the rewrite server at {base} sent a reply that is not JSON: {_clip(text)}") from None


def _parse(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


def _error_text(body: Any) -> str:
    """The message in an error body: {"error": "..."} (mlx_lm.server), {"error": {"message":
    ...}} (OpenAI, vLLM, Ollama, llama.cpp), {"detail": ...} (FastAPI), or plain text."""
    if isinstance(body, dict):
        err = body.get("error", body.get("detail", body.get("message")))
        if isinstance(err, dict):
            err = err.get("message", err)
        body = err if err is not None else body
    return _clip(str(body)) if body not in (None, "") else ""


def _clip(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _ERROR_CHARS else line[: _ERROR_CHARS - 3] + "..."


def _reason(reason: object) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, socket.gaierror):
        return "unknown host"
    if isinstance(reason, ConnectionResetError):
        return "connection reset"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return _clip(str(reason)) or type(reason).__name__
