"""A model hub on localhost that answers the calls huggingface_hub's `snapshot_download` makes,
so that huggingface_hub itself writes the cache the tests read (its real layout: blobs,
refs, snapshots of links, tree listings) and downloads can be cut off or stalled on purpose.

Endpoints (as huggingface_hub 0.30-2.x call them):
  GET  /api/models/{repo}/revision/{rev}   repo info: the commit sha
  GET  /api/models/{repo}/tree/{rev}       the file listing (one page)
  HEAD /{repo}/resolve/{rev}/{path}        X-Repo-Commit, ETag, Content-Length
  GET  /{repo}/resolve/{rev}/{path}        the bytes; `Range: bytes=N-` resumes
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".npz")


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def etag_of(path: str, data: bytes) -> str:
    """What the hub sends as ETag, and huggingface_hub names the blob by: the sha256 of
    LFS files, the git blob id of the rest."""
    return hashlib.sha256(data).hexdigest() if path.endswith(LFS_SUFFIXES) else git_blob_id(data)


@dataclass
class Repo:
    files: dict[str, bytes]
    commit: str


@dataclass
class FakeHub:
    repos: dict[str, Repo] = field(default_factory=dict)
    failing: set[str] = field(default_factory=set)  # file paths whose GET answers 500
    stalled: dict[str, threading.Event] = field(default_factory=dict)  # GET sends half, then waits
    requests: list[tuple[str, str]] = field(default_factory=list)
    url: str = ""

    def add(self, repo: str, files: dict[str, bytes]) -> str:
        digest = hashlib.sha1(repo.encode())
        for name in sorted(files):
            digest.update(name.encode() + files[name])
        self.repos[repo] = Repo(dict(files), digest.hexdigest())
        return self.repos[repo].commit

    def stall(self, path: str) -> threading.Event:
        """GETs of `path` send half the file and hang until the returned event is set."""
        self.stalled[path] = threading.Event()
        return self.stalled[path]

    def start(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            pass

        Handler.hub = hub
        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        for event in self.stalled.values():
            event.set()
        self._server.shutdown()
        self._server.server_close()


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:  # a client killed mid-file: expected
        pass


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:
        self._route(head=True)

    def do_GET(self) -> None:
        self._route(head=False)

    def _route(self, head: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        self.hub.requests.append((self.command, path))
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/revision/([^/]+)", path)
        if m:
            return self._repo_info(m[1])
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(/.*)?", path)
        if m:
            return self._tree(m[1])
        m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if m:
            return self._file(m[1], m[3], head)
        self._json(404, {"error": "not found"})

    def _repo(self, repo_id: str) -> Repo | None:
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            self._json(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
        return repo

    def _repo_info(self, repo_id: str) -> None:
        repo = self._repo(repo_id)
        if repo is not None:
            self._json(200, {"id": repo_id, "modelId": repo_id, "sha": repo.commit, "private": False,
                             "siblings": [{"rfilename": p} for p in sorted(repo.files)]})

    def _tree(self, repo_id: str) -> None:
        repo = self._repo(repo_id)
        if repo is None:
            return
        listing = []
        for path, data in sorted(repo.files.items()):
            item = {"type": "file", "oid": git_blob_id(data), "size": len(data), "path": path}
            if path.endswith(LFS_SUFFIXES):
                item["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
            listing.append(item)
        self._json(200, listing)

    def _file(self, repo_id: str, name: str, head: bool) -> None:
        repo = self._repo(repo_id)
        if repo is None:
            return
        if name not in repo.files:
            return self._json(404, {"error": "Entry not found"},
                              {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": repo.commit})
        data = repo.files[name]
        headers = {"X-Repo-Commit": repo.commit, "ETag": f'"{etag_of(name, data)}"', "Accept-Ranges": "bytes"}
        if head:
            return self._send(200, {**headers, "Content-Length": str(len(data))}, b"", head=True)
        if name in self.hub.failing:
            return self._json(500, {"error": "the hub broke"})
        start = 0
        ranged = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if ranged:
            start = int(ranged[1])
        body = data[start:]
        status = 206 if ranged else 200
        if ranged:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        stall = self.hub.stalled.get(name)
        if stall is not None and not stall.is_set():
            half = len(body) // 2
            self.send_response(status)
            for k, v in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body[:half])
            self.wfile.flush()
            stall.wait(60)
            self.close_connection = True
            return
        self._send(status, {**headers, "Content-Length": str(len(body))}, body)

    def _json(self, status: int, obj, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(obj).encode()
        self._send(status, {"Content-Type": "application/json", "Content-Length": str(len(body)),
                            **(headers or {})}, body)

    def _send(self, status: int, headers: dict[str, str], body: bytes, head: bool = False) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)
