"""The `openai` rewrite backend: any OpenAI-compatible chat server (mlx_lm.server, vLLM,
llama.cpp's llama-server, Ollama, hosted APIs), over HTTP with the standard library only.

Replies stream as server-sent events from `POST {base}/v1/chat/completions` with
`"stream": true`. An API key is read from the environment only — NOTETAKER_OPENAI_API_KEY,
else OPENAI_API_KEY — and sent as a Bearer token; it never comes from config files or
flags, so it cannot end up in them or in shell history.

Servers do not say how they tokenize, so `count_tokens` is an estimate (4 characters a
token, rounded up) and the context is what the constructor is told (8192 if nothing).

The key stays with the server it is meant for: a redirect to another scheme, host or port
is followed without the Authorization header (as curl and requests do), a same-origin one
keeps it; a base URL with `user:pass@` is refused (secrets come from the environment only);
every message this module makes has the key, any `Bearer …` token and any URL userinfo
replaced by `***`; a key about to cross the network unencrypted (plain http:// to a host
that is not this machine) is warned about once, through `report`.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import re
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from rewrite.backend import BackendOptions, BackendSpec, RewriteBackend
from rewrite.base import Capabilities, Message, RewriteError

DEFAULT_CONTEXT = 8192  # conservative: most served models hold more
KEY_VARIABLES = ("NOTETAKER_OPENAI_API_KEY", "OPENAI_API_KEY")
CHARS_PER_TOKEN = 4  # the usual rule of thumb for English with a modern BPE vocabulary
_ERROR_CHARS = 200  # of a server's error text quoted in ours
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^\s'\"<>]*@")  # up to the last @ of the address
_TOKEN = re.compile(r"\b(bearer)(\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_WARNED: set[tuple[str, str, int]] = set()  # origins already warned about a key sent in the clear


class _NoModelList(RewriteError):
    """The server answered /models, but with no usable list."""


def api_url(base_url: str) -> str:
    """`base_url` normalised to end in /v1 (accepted with or without it, and a slash).
    One-line RewriteError for anything else, the address shown without its userinfo."""
    url = base_url.strip().rstrip("/")
    shown = redact(base_url.strip())
    example = "e.g. http://127.0.0.1:8080"
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as e:  # "http://[::1": an unclosed IPv6 bracket
        raise _fail(f"the rewrite server address {shown!r} is not a valid URL ({_clip(str(e)).lower()}), "
                    f"{example}") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _fail(f"the rewrite server address {shown!r} is not an http(s) URL, {example}")
    if "@" in parts.netloc:
        # Secrets come from the environment only: a password in openai_base_url would sit in
        # config.toml or a shell's history and compete with the key for the Authorization header.
        raise _fail(f"the rewrite server address {shown!r} carries a user name or password; notetaker does not "
                    "take secrets from its settings: drop them and put the API key in NOTETAKER_OPENAI_API_KEY")
    try:
        parts.port  # raises on a port that is not a number or out of range
    except ValueError as e:
        raise _fail(f"the rewrite server address {shown!r} is not a valid URL ({_clip(str(e)).lower()}), "
                    f"{example}") from None
    if not parts.hostname:
        raise _fail(f"the rewrite server address {shown!r} is not an http(s) URL, {example}")
    return url if parts.path.endswith("/v1") else url + "/v1"


def redact(text: str) -> str:
    """`text` with the userinfo of every URL in it replaced: http://***@host:port/..."""
    return _USERINFO.sub(r"\1***@", text)


def key_in_clear(url: str) -> bool:
    """Whether a key sent to `url` crosses the network unencrypted: plain http:// to a host
    that is not this machine (127.0.0.0/8, ::1, localhost)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return False
    return parts.scheme == "http" and not _is_loopback(parts.hostname)


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
                 context_tokens: int | None = None, report: Callable[[str], None] | None = None):
        """No network here: a missing `model` is asked of the server (GET /v1/models, the
        first listed) by the first call that needs it. `report` gets warnings, one line each
        (default: a `notetaker: ` line on stderr, as the CLI prints them)."""
        self.base = api_url(base_url)
        self.timeout = timeout
        self._report = report or _to_stderr
        self._opener = _opener(self.base)
        self._model = model
        self._context = context_tokens or DEFAULT_CONTEXT
        self.last_finish_reason: str | None = None  # "stop", "length", ... as the server said
        self._send_key = True

    @property
    def model(self) -> str:
        """The model asked for: the one named, else the one the server serves, else ""
        (the server's own default) where it lists none. A server serving several with none
        named is a one-line RewriteError listing them: guessing (the first listed) would
        run a model nobody chose."""
        if self._model is None:
            try:
                models = self.list_models()
            except _NoModelList:
                # mlx_lm.server answers /v1/models with an empty body until something has
                # been downloaded to the hub cache; its served model is then the default.
                models = []
            self._model = choose_model(models, self.base)
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
            raise _NoModelList(_scrub(f"the rewrite server at {self.base} answered /models with {what}")) from None
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise _NoModelList(_scrub(f"the rewrite server at {self.base} answered /models without a model list"))
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
            raise _fail(f"the rewrite server at {self.base} closed the stream before the reply ended")

    def _whole(self, raw: bytes) -> Iterator[str]:
        body = _json(raw, self.base)
        try:
            choice = body["choices"][0]
            content = choice["message"]["content"]
        except (KeyError, IndexError, TypeError):
            if isinstance(body, dict) and "error" in body:
                raise _fail(f"the rewrite server at {self.base} failed: {_error_text(body)}") from None
            raise _fail(f"the rewrite server at {self.base} sent a reply without choices[0].message: "
                        f"{_clip(raw.decode('utf-8', errors='replace'))}") from None
        self.last_finish_reason = choice.get("finish_reason")
        if isinstance(content, str) and content:
            yield content

    def _lines(self, reply: Any) -> Iterator[bytes]:
        while True:
            try:
                raw = reply.readline()
            except TimeoutError:
                raise _fail(f"the rewrite server at {self.base} sent nothing for {self.timeout:g} s "
                            "mid-reply (a slow model needs a longer timeout)") from None
            except OSError as e:
                raise _fail(f"the connection to the rewrite server at {self.base} broke mid-reply: "
                            f"{_reason(e)}") from None
            if not raw:
                return
            yield raw

    def _delta(self, data: str) -> str:
        try:
            chunk = json.loads(data)
        except ValueError:
            raise _fail(f"the rewrite server at {self.base} sent a stream event that is not JSON: "
                        f"{_clip(data)}") from None
        if not isinstance(chunk, dict):
            raise _fail(f"the rewrite server at {self.base} sent an unexpected event: {_clip(data)}")
        if "error" in chunk:
            raise _fail(f"the rewrite server at {self.base} failed mid-reply: {_error_text(chunk)}")
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
        key = api_key() if self._send_key else None
        if key:
            headers["Authorization"] = f"Bearer {key[1]}"
            self._warn_if_in_clear(key[0])
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            return self._opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            raise self._http_error(e, path, key[0] if key else None) from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, TimeoutError):
                raise _fail(f"cannot reach the rewrite server at {self.base}: "
                            f"no answer within {self.timeout:g} s") from None
            raise _fail(f"cannot reach the rewrite server at {self.base}: {_reason(e.reason)}") from None
        except TimeoutError:
            raise _fail(f"the rewrite server at {self.base} did not answer within {self.timeout:g} s") from None
        except OSError as e:  # connection reset while reading the headers, and the like
            raise _fail(f"cannot reach the rewrite server at {self.base}: {_reason(e)}") from None
        except ValueError as e:  # a redirect to a malformed address (http.client.InvalidURL, urllib.parse)
            raise _fail(f"the rewrite server at {self.base} sent an address that cannot be followed: "
                        f"{_clip(str(e))}") from None

    def _warn_if_in_clear(self, key_variable: str) -> None:
        """Once per server and process: the key goes over plain http:// to another machine."""
        if not key_in_clear(self.base) or _origin(self.base) in _WARNED:
            return
        _WARNED.add(_origin(self.base))
        self._report(_scrub(f"the API key in {key_variable} is sent unencrypted over http:// to "
                            f"{urllib.parse.urlsplit(self.base).netloc}; anyone on the network between can read "
                            "it (use https:// for a server on another machine)"))

    def _http_error(self, e: urllib.error.HTTPError, path: str, key_variable: str | None) -> RewriteError:
        try:
            detail = _error_text(_parse(e.read()))
        except Exception:  # the error body itself failed to arrive
            detail = ""
        finally:
            e.close()
        said = f": {detail}" if detail else ""
        where = f"the rewrite server at {self.base}"
        final = e.geturl() or self.base
        moved = _origin(final) != _origin(self.base)
        if moved:
            where += f" (redirected to {_origin_text(final)})"
        if e.code in (401, 403):
            if moved and key_variable:
                hint = (f"the key in {key_variable} is sent only to {_origin_text(self.base)}, never to the "
                        "address it redirects to: set openai_base_url to that server if it is the one meant")
            else:
                hint = f"the key in {key_variable} was refused" if key_variable else (
                    "it needs an API key: set NOTETAKER_OPENAI_API_KEY")
            return _fail(f"{where} refused the request (HTTP {e.code}); {hint}{said}")
        if 300 <= e.code < 400:
            return _fail(f"{where} answered HTTP {e.code} for {path}, a redirect notetaker does not follow "
                         "(a POST turned into a GET, or a loop): set openai_base_url to the server's own address")
        if e.code == 404 and path == "/chat/completions":
            offered = self._offered()
            if offered is not None and self._model and self._model not in offered:
                listing = ", ".join(offered[:10]) + (" ..." if len(offered) > 10 else "") if offered else "none"
                return _fail(f"{where} has no model {self._model!r}; it offers: {listing}")
            return _fail(f"{where} answered HTTP 404 for {path}{said}")
        if e.code == 404:
            return _fail(f"{where} has no {path} endpoint (HTTP 404): is it an OpenAI-compatible server?")
        return _fail(f"{where} answered HTTP {e.code} for {path}{said}")

    def _offered(self) -> list[str] | None:
        try:
            return self.list_models()
        except RewriteError:
            return None


def _opener(base: str) -> urllib.request.OpenerDirector:
    """urllib's opener, with redirects that keep the key at its origin; a server on this
    machine is never reached through an HTTP proxy from the environment (urllib would
    otherwise send loopback requests to it)."""
    if _is_loopback(urllib.parse.urlsplit(base).hostname):
        return urllib.request.build_opener(urllib.request.ProxyHandler({}), _Redirects)
    return urllib.request.build_opener(_Redirects)


class _Redirects(urllib.request.HTTPRedirectHandler):
    """urllib's redirects, with the Authorization header kept only while the redirect stays
    at the same scheme, host and port (urllib copies it to wherever a server points). A POST
    follows 307/308 with its body (their meaning); 301/302/303 would turn it into a GET and
    lose the request, so they are answered as errors. Only http(s) targets are followed."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # urllib's signature
        if urllib.parse.urlsplit(newurl).scheme not in ("http", "https"):
            fp.close()
            raise _fail(f"the rewrite server at {_origin_text(req.full_url)} redirected to {redact(newurl)!r}, "
                        "which is not an http(s) address")
        if req.get_method() == "POST" and code in (307, 308):
            new = urllib.request.Request(newurl, data=req.data, headers=dict(req.headers),
                                         origin_req_host=req.origin_req_host, unverifiable=True, method="POST")
        elif req.get_method() == "POST":
            raise urllib.error.HTTPError(req.full_url, code, msg, headers, fp)
        else:
            new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and _origin(newurl) != _origin(req.full_url):
            new.remove_header("Authorization")
        return new


def _origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of `url`, the port filled in; a malformed one is nobody's origin."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme, 0)
    except ValueError:
        return ("", url, -1)
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def _origin_text(url: str) -> str:
    scheme, host, port = _origin(url)
    if port < 0 or not host:
        return repr(redact(url))
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{port}"


def _is_loopback(host: str | None) -> bool:
    """127.0.0.0/8, ::1 (also as ::ffff:127.x.y.z) and localhost."""
    host = (host or "").lower().rstrip(".")
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _to_stderr(line: str) -> None:
    print(f"notetaker: {line}", file=sys.stderr, flush=True)


def _fail(message: str) -> RewriteError:
    """The error a user sees: never the key, a bearer token or a URL's userinfo."""
    return RewriteError(_scrub(message))


def _scrub(text: str) -> str:
    for name in KEY_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value:
            text = text.replace(value, "***")
    return redact(_TOKEN.sub(r"\1\2***", text))


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
        raise _fail(f"the rewrite server at {base} stopped answering mid-reply") from None
    except Exception as e:  # OSError, http.client.IncompleteRead
        raise _fail(f"the connection to the rewrite server at {base} broke: {_reason(e)}") from None


def _json(raw: bytes, base: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        if not raw.strip():
            raise _fail(f"the rewrite server at {base} sent an empty reply") from None
        text = raw.decode("utf-8", errors="replace")
        raise _fail(f"the rewrite server at {base} sent a reply that is not JSON: {_clip(text)}") from None


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
    """One line of at most _ERROR_CHARS, scrubbed before it is cut (a cut key is still a key)."""
    line = _scrub(" ".join(text.split()))
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


def choose_model(models: Sequence[str], base: str) -> str:
    """The model to ask a server for when none is named: the one it serves ("" when it lists
    none: its default); several is a one-line RewriteError naming them."""
    if len(models) <= 1:
        return models[0] if models else ""
    shown = ", ".join(models[:8]) + (f" and {len(models) - 8} more" if len(models) > 8 else "")
    raise _fail(f"the rewrite server at {base} serves {len(models)} models ({shown}); "
                "choose one as the rewrite model")


# --- servers already running on this machine ------------------------------------------------

USUAL_PORTS = {11434: "Ollama", 1234: "LM Studio", 8080: "llama.cpp or mlx_lm.server"}


@dataclass(frozen=True)
class Server:
    """An OpenAI-compatible server found on this machine."""

    url: str  # http://127.0.0.1:PORT/v1
    label: str  # what usually listens there ("Ollama"), or "a server"
    models: tuple[str, ...]  # what it serves (empty: it lists none; its default model)


def detect_servers(ports: Sequence[int], timeout: float = 0.5) -> list[Server]:
    """The OpenAI-compatible servers answering on loopback at `ports`, in that order. A port
    nobody listens on costs a refused connection; one with another kind of service (no model
    list, an HTTP error) is not a server of ours. No key is sent."""
    found = []
    for port in ports:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=timeout):
                pass
        except OSError:
            continue
        url = f"http://127.0.0.1:{port}/v1"
        probe = OpenAIBackend(url, "", timeout=timeout, report=lambda line: None)
        probe._send_key = False  # asking what is served needs no key, and a key stays with its server
        try:
            models = tuple(probe.list_models())
        except _NoModelList as e:
            if "an empty reply" not in str(e):
                continue
            models = ()  # mlx_lm.server before its model is in the hub cache
        except RewriteError:
            continue
        found.append(Server(url, USUAL_PORTS.get(port, "a server"), models))
    return found


def _build(options: BackendOptions) -> OpenAIBackend:
    assert options.openai_base_url  # the registry checks SPEC.needs first
    return OpenAIBackend(options.openai_base_url, options.model)


SPEC = BackendSpec(name="openai", summary="any OpenAI-compatible HTTP server (mlx_lm.server, vLLM, llama.cpp, Ollama)",
                   build=_build, needs={"openai_base_url": "a server address (e.g. http://127.0.0.1:8080)"})
