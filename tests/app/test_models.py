"""`notetaker models list|pull|rm|add` and the rule that a half-finished or damaged download is
never used. Downloads come from a hub on localhost (tests/app/fake_hub.py), so huggingface_hub
itself writes the cache these tests read: its real layout, its own `.incomplete` files."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save

from asr.base import ModelNotFoundError
from asr.runtime.family import CatalogueModel
from asr.runtime.footprint import TensorInfo, summarize
from asr.runtime.hub import resolve_model
from notetaker.cli import main
from notetaker.models import download_advice

from .conftest import ROOT
from .fake_hub import FakeHub, etag_of

# --- models the fake hub serves ----------------------------------------------------------------

WHISPER_DIMS = {"n_mels": 80, "n_audio_ctx": 16, "n_audio_state": 8, "n_audio_head": 2, "n_audio_layer": 1,
                "n_vocab": 51864, "n_text_ctx": 8, "n_text_state": 8, "n_text_head": 2, "n_text_layer": 1}
LLM_CONFIG = {"model_type": "llama", "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
              "hidden_size": 8, "intermediate_size": 16, "vocab_size": 32, "max_position_embeddings": 256}
LLM_SHAPE = {"layers": 2, "heads": 2, "kv_heads": 1, "head_dim": 4, "hidden": 8, "ffn": 16, "vocab": 32,
             "window": 256}


def _tensors(seed: int, n: int, dtype=np.float16) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"layers.{i}.weight": rng.standard_normal((64, 64)).astype(dtype) for i in range(n)}


def whisper_files(seed: int = 0) -> dict[str, bytes]:
    return {"config.json": json.dumps(WHISPER_DIMS).encode(),
            "model.safetensors": save(_tensors(seed, 3)),
            "README.md": b"# not fetched: outside the catalogue's allow_patterns\n"}


def llm_files() -> dict[str, bytes]:
    shards = {"model-00001-of-00002.safetensors": _tensors(1, 2), "model-00002-of-00002.safetensors": _tensors(2, 3)}
    index = {"metadata": {}, "weight_map": {k: name for name, t in shards.items() for k in t}}
    return {"config.json": json.dumps(LLM_CONFIG).encode(),
            "tokenizer_config.json": b'{"chat_template": "{{ messages }}"}',
            "model.safetensors.index.json": json.dumps(index).encode(),
            **{name: save(t) for name, t in shards.items()}}


def entry(name: str, repo: str, files: dict[str, bytes], family: str = "whisper", **kw) -> CatalogueModel:
    """A catalogue entry as the lead writes them: the weights summarized from the headers."""
    tensors = {}
    for path, data in files.items():
        if path.endswith(".safetensors"):
            header = json.loads(data[8:8 + int.from_bytes(data[:8], "little")])
            tensors.update({k: TensorInfo(v["dtype"], tuple(v["shape"])) for k, v in header.items()})
    shape = LLM_SHAPE if family == "llm" else WHISPER_DIMS
    kind, engine = ("rewrite", "mlx") if family == "llm" else ("asr", family)
    return CatalogueModel(name=name, kind=kind, family=family, engine=engine, repo=repo, languages="en", rank=1,
                          cpu_realtime=True, weights=summarize(tensors), shape=shape, float_dtype="F16",
                          extra_bytes=sum(len(d) for p, d in files.items() if not p.endswith(".safetensors")), **kw)


PATTERNS = ("*.json", "*.safetensors")
WHISPER = entry("whisper-mini", "acme/whisper-mini", whisper_files(), allow_patterns=PATTERNS)
BROKEN = entry("whisper-broken", "acme/whisper-broken", whisper_files(5), allow_patterns=PATTERNS)
LLM = entry("llm-tiny", "acme/llm-tiny", llm_files(), family="llm")
LARGE = CatalogueModel(name="whisper-large", kind="asr", family="whisper", engine="whisper",
                         repo="acme/never-downloaded", languages="99 languages", rank=2, cpu_realtime=False,
                         weights=WHISPER.weights, shape=WHISPER_DIMS, float_dtype="F16", extra_bytes=3 * 2**30)


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch):
    """The fake hub, with huggingface_hub pointed at it and online."""
    import huggingface_hub.constants as c

    fake = FakeHub().start()
    for e, files in ((WHISPER, whisper_files()), (BROKEN, whisper_files(5)), (LLM, llm_files())):
        fake.add(e.repo, files)
    monkeypatch.setattr(c, "ENDPOINT", fake.url)
    monkeypatch.setattr(c, "HUGGINGFACE_CO_URL_TEMPLATE", fake.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", False)
    yield fake
    fake.stop()


@pytest.fixture(autouse=True)
def catalogue(monkeypatch: pytest.MonkeyPatch):
    import notetaker.catalogue

    monkeypatch.setattr(notetaker.catalogue, "CATALOGUE", (WHISPER, BROKEN, LLM, LARGE))
    monkeypatch.setattr(notetaker.catalogue, "WHEEL_MODELS", ())  # tests/app/test_wheel_models.py has them


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def models(capsys, home: Path, *args: str) -> tuple[int, str, str]:
    rc = main(["--home", str(home), "models", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_error(rc: int, err: str, *mentions: str) -> str:
    assert rc == 2, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("notetaker: "), err
    assert "internal error" not in err
    for m in mentions:
        assert m.lower() in lines[0].lower(), (m, lines[0])
    return lines[0]


def listing(capsys, home: Path) -> dict[str, dict]:
    rc, out, err = models(capsys, home, "list", "--json")
    assert rc == 0, err
    return {r["name"]: r for r in json.loads(out)}


def tree(folder: Path) -> dict[str, tuple[str, int | str]]:
    """Every entry under a folder: links by target, files by size."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        out[rel] = ("link", os.readlink(p)) if p.is_symlink() else ("file", p.stat().st_size) if p.is_file() \
            else ("dir", 0)
    return out


def repo_dir(home: Path, repo: str) -> Path:
    return home / "models" / ("models--" + repo.replace("/", "--"))


def blob(home: Path, repo: str, path: str, files: dict[str, bytes]) -> Path:
    return repo_dir(home, repo) / "blobs" / etag_of(path, files[path])


# --- the cache is huggingface_hub's own ----------------------------------------------------------


def test_pull_writes_huggingface_hubs_cache_and_engines_find_it_offline(capsys, home, hub, monkeypatch):
    rc, out, err = models(capsys, home, "pull", "whisper-mini", "--quiet")
    assert rc == 0, err
    assert out.startswith("whisper-mini: downloaded") and err == ""
    from huggingface_hub import scan_cache_dir, snapshot_download

    cache = home / "models"
    [repo] = [r for r in scan_cache_dir(cache).repos if r.repo_id == "acme/whisper-mini"]
    assert {f.file_name for rev in repo.revisions for f in rev.files} == {"config.json", "model.safetensors"}
    snapshot = Path(snapshot_download("acme/whisper-mini", cache_dir=cache, local_files_only=True,
                                      allow_patterns=list(PATTERNS)))
    assert os.readlink(snapshot / "model.safetensors") == "../../blobs/" + etag_of(
        "model.safetensors", whisper_files()["model.safetensors"])
    assert (snapshot / "model.safetensors").read_bytes() == whisper_files()["model.safetensors"]
    # The engines (no allow_patterns: README.md was never fetched) load it offline.
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    assert resolve_model("acme/whisper-mini", cache, allow_download=False) == snapshot
    assert resolve_model("acme/whisper-mini", cache, allow_download=True) == snapshot
    row = listing(capsys, home)["whisper-mini"]
    assert row["state"] == "complete" and row["status"] == "downloaded"
    # huggingface_hub counts the blobs; the repo folder also holds its file listing (trees/).
    files = [f for f in repo_dir(home, "acme/whisper-mini").rglob("*") if f.is_file() and not f.is_symlink()]
    assert row["disk_bytes"] == sum(f.stat().st_size for f in files) >= repo.size_on_disk
    assert row["memory_bytes"] > 0 and row["folder"] == str(snapshot)


# --- list --------------------------------------------------------------------------------------


@pytest.fixture
def sample_home(capsys, home: Path, hub: FakeHub, tmp_path: Path) -> Path:
    """One model of every state: downloaded, partial, corrupt, not downloaded, local."""
    assert models(capsys, home, "pull", "whisper-mini", "-q")[0] == 0
    assert models(capsys, home, "pull", "whisper-broken", "-q")[0] == 0
    hub.failing.add("model-00002-of-00002.safetensors")
    rc, _, err = models(capsys, home, "pull", "llm-tiny", "-q")
    one_line_error(rc, err, "llm-tiny", "notetaker models pull llm-tiny", "again to resume")
    hub.failing.clear()
    # Cut the broken model's weights off, as a full disk or a bad copy would.
    weights = blob(home, "acme/whisper-broken", "model.safetensors", whisper_files(5))
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) - 100])
    mine = tmp_path / "my-whisper"
    mine.mkdir()
    for name, data in whisper_files(7).items():
        (mine / name).write_bytes(data)
    rc, out, err = models(capsys, home, "add", str(mine), "--name", "mine")
    assert rc == 0, err
    return home


def test_list_shows_every_state(capsys, sample_home):
    rc, out, err = models(capsys, sample_home, "list")
    assert rc == 0, err
    lines = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    assert "downloaded" in lines["whisper-mini"] and "acme/whisper-mini" in lines["whisper-mini"]
    assert "asr/whisper" in lines["whisper-mini"]
    assert "partial: run `notetaker models pull llm-tiny` to resume" in lines["llm-tiny"]
    assert "rewrite/mlx" in lines["llm-tiny"]
    assert "corrupt: model.safetensors is cut off" in lines["whisper-broken"]
    assert "not downloaded" in lines["whisper-large"] and "~3.0 GB" in lines["whisper-large"]
    assert "99 languages" in lines["whisper-large"]
    assert f"local: {sample_home.parent / 'my-whisper'}" in lines["mine"] and "downloaded" in lines["mine"]
    assert "bundled" in lines["tiny.en"]
    assert out.splitlines()[0].split() == ["NAME", "KIND", "SOURCE", "ON", "DISK", "MEMORY", "LANGUAGES", "STATUS"]
    assert "memory: once loaded on this machine" in out and "8192 tokens of context" in out


def test_list_json(capsys, sample_home):
    rows = listing(capsys, sample_home)
    assert {n: r["state"] for n, r in rows.items()} == {
        "tiny.en": "complete", "whisper-mini": "complete", "whisper-broken": "corrupt", "llm-tiny": "partial",
        "whisper-large": "missing", "mine": "complete"}
    assert rows["whisper-large"]["disk_bytes"] == 0
    assert rows["whisper-large"]["download_bytes"] == LARGE.download_bytes
    assert rows["whisper-large"]["memory_bytes"] > 0  # from the catalogue's numbers
    assert rows["mine"]["source"].startswith("local: ") and rows["mine"]["kind"] == "asr"
    assert rows["mine"]["disk_bytes"] == sum(len(d) for d in whisper_files(7).values())
    assert "shard model-00002-of-00002.safetensors" in rows["llm-tiny"]["problem"]
    for r in rows.values():
        assert set(r) >= {"name", "kind", "engine", "source", "state", "status", "disk_bytes", "memory_bytes"}


def test_an_unfinished_blob_is_partial(capsys, sample_home):
    """What a killed download leaves: `<etag>.<id>.incomplete` beside the finished blobs."""
    files = whisper_files()
    half = blob(sample_home, "acme/whisper-mini", "model.safetensors", files)
    leftover = half.with_name("0" * 64 + ".1a2b3c4d.incomplete")
    leftover.write_bytes(b"\0" * 1000)
    row = listing(capsys, sample_home)["whisper-mini"]
    assert row["state"] == "partial" and "stopped half-way" in row["problem"]
    with pytest.raises(ModelNotFoundError) as e:
        resolve_model("acme/whisper-mini", sample_home / "models", allow_download=False)
    msg = f"{e.value}{download_advice(e.value)}"  # the library's fact, the app's advice
    assert "notetaker models pull acme/whisper-mini" in msg and "\n" not in msg


# --- engines never use a partial or corrupt download -----------------------------------------------


@pytest.mark.parametrize("repo, words", [("acme/llm-tiny", ("partly downloaded", "to resume")),
                                         ("acme/whisper-broken", ("damaged", "cut off"))])
def test_engines_refuse_partial_and_corrupt_downloads(sample_home, monkeypatch, repo, words):
    import huggingface_hub.constants as c

    cache = sample_home / "models"
    before = tree(cache)
    for allow_download in (False, True):  # offline: the hub cannot finish it either
        monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
        with pytest.raises(ModelNotFoundError) as e:
            resolve_model(repo, cache, allow_download=allow_download)
        msg = f"{e.value}{download_advice(e.value)}"  # the library's fact, the app's advice
        assert "\n" not in msg and f"notetaker models pull {repo}" in msg
        for w in words:
            assert w in msg
    assert tree(cache) == before


def test_engine_through_the_cli_says_one_line(sample_home):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTETAKER_", "HF_"))}
    env.update(PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", NOTETAKER_OPENAI_DETECT="off")
    sample = ROOT / "notetaker" / "data" / "sample.flac"
    p = subprocess.run([sys.executable, "-m", "notetaker", "--home", str(sample_home), "transcribe", str(sample),
                        "--model", "acme/whisper-broken"], capture_output=True, text=True, timeout=120, env=env)
    one_line_error(p.returncode, p.stderr, "damaged", "notetaker models pull acme/whisper-broken")


# --- pull ------------------------------------------------------------------------------------


def test_pull_resumes_a_partial_download(capsys, sample_home, hub):
    done_before = blob(sample_home, "acme/llm-tiny", "model-00001-of-00002.safetensors", llm_files())
    assert done_before.is_file()
    hub.requests.clear()
    rc, out, err = models(capsys, sample_home, "pull", "llm-tiny", "-q")
    assert rc == 0, err
    fetched = [p for method, p in hub.requests if method == "GET" and "/resolve/" in p]
    assert [p.rsplit("/", 1)[1] for p in fetched] == ["model-00002-of-00002.safetensors"]  # only what was missing
    assert listing(capsys, sample_home)["llm-tiny"]["state"] == "complete"


def test_pull_repairs_a_corrupt_download(capsys, sample_home):
    rc, out, err = models(capsys, sample_home, "pull", "whisper-broken", "-q")
    assert rc == 0, err
    assert blob(sample_home, "acme/whisper-broken", "model.safetensors", whisper_files(5)).read_bytes() == \
        whisper_files(5)["model.safetensors"]
    assert listing(capsys, sample_home)["whisper-broken"]["state"] == "complete"


def test_pull_with_downloads_off_is_one_line_and_changes_nothing(capsys, home, hub):
    home.mkdir()
    (home / "config.toml").write_text("allow_download = false\n")
    rc, out, err = models(capsys, home, "pull", "whisper-mini")
    one_line_error(rc, err, "whisper-mini", "downloads are turned off", "allow_download")
    assert not (home / "models").exists() and hub.requests == []


def test_pull_offline_is_one_line_and_changes_nothing(capsys, sample_home, hub, monkeypatch):
    import huggingface_hub.constants as c

    before = tree(sample_home / "models")
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    rc, out, err = models(capsys, sample_home, "pull", "llm-tiny")
    one_line_error(rc, err, "cannot reach the hub", "HF_HUB_OFFLINE", "notetaker models pull llm-tiny")
    rc, out, err = models(capsys, sample_home, "pull", "whisper-large")
    one_line_error(rc, err, "cannot reach the hub", "whisper-large")
    assert tree(sample_home / "models") == before


def test_pull_with_the_hub_unreachable_is_one_line_and_changes_nothing(capsys, sample_home, hub, monkeypatch):
    import socket

    import huggingface_hub.constants as c

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setattr(c, "ENDPOINT", closed)
    monkeypatch.setattr(c, "HUGGINGFACE_CO_URL_TEMPLATE", closed + "/{repo_id}/resolve/{revision}/{filename}")
    before = tree(sample_home / "models")
    start = time.monotonic()
    rc, out, err = models(capsys, sample_home, "pull", "llm-tiny")
    one_line_error(rc, err, "cannot reach the hub", "no network", "pull llm-tiny")
    rc, out, err = models(capsys, sample_home, "pull", "acme/not-here-yet")
    one_line_error(rc, err, "cannot reach the hub")
    assert time.monotonic() - start < 30
    assert tree(sample_home / "models") == before


def test_pull_names(capsys, home, hub):
    rc, out, err = models(capsys, home, "pull", "no-such-model")
    one_line_error(rc, err, "unknown model", "whisper-mini", "org/name")
    rc, out, err = models(capsys, home, "pull", "acme/missing")
    one_line_error(rc, err, "acme/missing", "not found on the hub")
    rc, out, err = models(capsys, home, "pull", "tiny.en")
    assert rc == 0 and "tiny.en: downloaded" in out
    rc, out, err = models(capsys, home, "pull", "acme/llm-tiny", "-q")  # a repo id of a catalogue model
    assert rc == 0, err
    assert listing(capsys, home)["llm-tiny"]["state"] == "complete"


def test_list_leaves_out_single_files_fetched_for_another_model(capsys, home, hub):
    """Whisper's multilingual tokenizer comes alone from an openai repo: not a model to list."""
    from huggingface_hub import snapshot_download

    hub.add("openai/whisper-large-v3", {"tokenizer.json": b"{}", "model.safetensors": save(_tensors(9, 1))})
    snapshot_download("openai/whisper-large-v3", cache_dir=home / "models", allow_patterns=["tokenizer.json"])
    assert "openai/whisper-large-v3" not in listing(capsys, home)
    rc, out, err = models(capsys, home, "pull", "openai/whisper-large-v3", "-q")  # any repo id pulls
    one_line_error(rc, err, "openai/whisper-large-v3 holds no model notetaker runs", "no config.json")
    hub.repos["openai/whisper-large-v3"].files["config.json"] = json.dumps(WHISPER_DIMS).encode()
    hub.add("openai/whisper-large-v3", hub.repos["openai/whisper-large-v3"].files)
    assert models(capsys, home, "pull", "openai/whisper-large-v3", "-q")[0] == 0
    row = listing(capsys, home)["openai/whisper-large-v3"]
    assert row["state"] == "complete" and row["kind"] == "asr" and row["family"] == "whisper"


# --- rm ------------------------------------------------------------------------------------------


def test_rm_frees_the_bytes(capsys, sample_home):
    cache = sample_home / "models"
    rows = listing(capsys, sample_home)
    rc, out, err = models(capsys, sample_home, "rm", "whisper-mini")  # not a terminal: must say --yes
    one_line_error(rc, err, "--yes")
    assert repo_dir(sample_home, "acme/whisper-mini").is_dir()
    rc, out, err = models(capsys, sample_home, "rm", "whisper-mini", "--yes")
    assert rc == 0, err
    freed = rows["whisper-mini"]["disk_bytes"]
    assert freed > 0 and out.strip() == f"whisper-mini: removed, {_size(freed)} freed"
    assert not repo_dir(sample_home, "acme/whisper-mini").exists()
    assert not (cache / ".locks" / "models--acme--whisper-mini").exists()
    assert listing(capsys, sample_home)["whisper-mini"]["state"] == "missing"
    from huggingface_hub import scan_cache_dir

    assert "acme/whisper-mini" not in {r.repo_id for r in scan_cache_dir(cache).repos}
    rc, out, err = models(capsys, sample_home, "rm", "whisper-mini", "--yes")
    one_line_error(rc, err, "whisper-mini")
    # Partial and corrupt downloads go the same way.
    assert models(capsys, sample_home, "rm", "llm-tiny", "-y")[0] == 0
    assert not repo_dir(sample_home, "acme/llm-tiny").exists()


def _size(n: int) -> str:
    from notetaker.cli.models import size

    return size(n)


def test_rm_refuses_the_bundled_model(capsys, sample_home):
    rc, out, err = models(capsys, sample_home, "rm", "tiny.en", "--yes")
    one_line_error(rc, err, "tiny.en", "bundled")
    assert listing(capsys, sample_home)["tiny.en"]["state"] == "complete"


def test_rm_of_a_local_model_keeps_the_folder(capsys, sample_home):
    mine = sample_home.parent / "my-whisper"
    before = tree(mine)
    rc, out, err = models(capsys, sample_home, "rm", "mine", "--yes")
    assert rc == 0, err
    assert "untouched" in out
    assert tree(mine) == before
    assert not (sample_home / "models" / "local" / "mine").is_symlink()
    assert "mine" not in listing(capsys, sample_home)


def test_rm_unknown(capsys, home):
    rc, out, err = models(capsys, home, "rm", "nothing-by-this-name", "--yes")
    one_line_error(rc, err, "nothing-by-this-name")


# --- add -------------------------------------------------------------------------------------------


def test_add_refuses_what_is_not_a_model(capsys, home, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "agenda.txt").write_text("1. budget\n")
    rc, out, err = models(capsys, home, "add", str(notes))
    one_line_error(rc, err, str(notes), "not a usable model folder")
    rc, out, err = models(capsys, home, "add", str(tmp_path / "nowhere"))
    one_line_error(rc, err, "no folder")
    # Whole files but a config no engine knows.
    (notes / "config.json").write_text('{"model_type": "bert", "hidden_size": 8}')
    (notes / "model.safetensors").write_bytes(save(_tensors(0, 1)))
    rc, out, err = models(capsys, home, "add", str(notes))
    one_line_error(rc, err, "bert")
    # A cut-off weight file.
    cut = tmp_path / "cut"
    cut.mkdir()
    for name, data in whisper_files().items():
        (cut / name).write_bytes(data[:-10] if name.endswith(".safetensors") else data)
    rc, out, err = models(capsys, home, "add", str(cut))
    one_line_error(rc, err, "cut off")
    assert not (home / "models" / "local").exists() or not any((home / "models" / "local").iterdir())


def test_add_registers_a_folder(capsys, home, tmp_path):
    folder = tmp_path / "llm"
    folder.mkdir()
    for name, data in llm_files().items():
        (folder / name).write_bytes(data)
    rc, out, err = models(capsys, home, "add", str(folder))
    assert rc == 0, err
    assert out.startswith("llm: rewrite/mlx model")
    row = listing(capsys, home)["llm"]
    assert row["state"] == "complete" and row["family"] == "llm" and row["memory_bytes"] > 0
    rc, out, err = models(capsys, home, "add", str(folder))
    one_line_error(rc, err, "already registered")
    rc, out, err = models(capsys, home, "add", str(folder), "--name", "whisper-mini")
    one_line_error(rc, err, "catalogue")
    shutil.rmtree(folder)  # the user deletes their folder: the registration says so
    row = listing(capsys, home)["llm"]
    assert row["state"] == "missing" and "is gone" in row["problem"]


def test_detect_family_uses_the_engines_layouts(tmp_path):
    from notetaker.models import detect_family

    cases = {
        "whisper-ct2": {"model.bin": b"x", "config.json": b"{}"},
        "whisper-hf": {"config.json": json.dumps({"model_type": "whisper", "d_model": 8, "encoder_layers": 1})},
        "voxtral-original": {"params.json": b"{}", "consolidated.safetensors": b""},
        "voxtral-hf": {"config.json": json.dumps({"model_type": "voxtral_realtime", "text_config": {}})},
        "voxtral-mlx": {"config.json": json.dumps({"decoder": {}, "encoder_args": {}})},
        "qwen3": {"config.json": json.dumps({"model_type": "qwen3_asr", "thinker_config": {}})},
        "llm": {"config.json": json.dumps(LLM_CONFIG), "tokenizer.json": b"{}"},
    }
    expect = {"whisper-ct2": "whisper", "whisper-hf": "whisper", "voxtral-original": "voxtral",
              "voxtral-hf": "voxtral", "voxtral-mlx": "voxtral", "qwen3": "qwen3", "llm": "llm"}
    for name, files in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        for f, data in files.items():
            (folder / f).write_bytes(data if isinstance(data, bytes) else data.encode())
        assert detect_family(folder)[0] == expect[name], name
    no_tokenizer = tmp_path / "bare-llm"
    no_tokenizer.mkdir()
    (no_tokenizer / "config.json").write_text(json.dumps(LLM_CONFIG))
    with pytest.raises(ModelNotFoundError):
        detect_family(no_tokenizer)


# --- a killed download, resumed; the progress bar -------------------------------------------------


def _pull_process(home: Path, hub: FakeHub, *args: str, **kw) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTETAKER_", "HF_", "PYTHON"))}
    env.update(PYTHONPATH=str(ROOT), HF_ENDPOINT=hub.url, HF_HUB_OFFLINE="0", NO_PROXY="127.0.0.1",
               HF_HOME=str(home.parent / "hf-home"))
    return subprocess.Popen([sys.executable, "-m", "notetaker", "--home", str(home), "models", "pull", *args],
                            env=env, **kw)


def test_a_killed_download_is_partial_then_resumed(capsys, home, hub):
    shard = "model-00002-of-00002.safetensors"
    hub.stall(shard)
    blobs = repo_dir(home, "acme/llm-tiny") / "blobs"
    p = _pull_process(home, hub, "acme/llm-tiny", "-q", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        # huggingface_hub writes in 10 MB chunks: this half file may still be 0 bytes on disk.
        # Wait for the stalled shard's own file: another one may be in flight first.
        stalled = etag_of(shard, llm_files()[shard]) + ".*incomplete"
        while not (blobs.is_dir() and any(blobs.glob(stalled))):
            assert p.poll() is None and time.monotonic() < deadline, p.communicate()
            time.sleep(0.05)
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    leftovers = sorted(blobs.glob("*.incomplete"))  # the stalled shard's, and any other file in flight
    assert any(f.name.startswith(etag_of(shard, llm_files()[shard]) + ".") for f in leftovers)
    row = listing(capsys, home)["llm-tiny"]
    assert row["state"] == "partial" and "stopped half-way" in row["problem"]
    with pytest.raises(ModelNotFoundError) as e:
        resolve_model("acme/llm-tiny", home / "models", allow_download=False)
    assert "partly downloaded" in str(e.value)
    # A minute later the user runs the same command again.
    hub.stalled[shard].set()
    old = time.time() - 120
    for f in leftovers:
        os.utime(f, (old, old))
    p = _pull_process(home, hub, "acme/llm-tiny", "-q", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert not any(f.exists() for f in leftovers)
    row = listing(capsys, home)["llm-tiny"]
    assert row["state"] == "complete"
    folder = Path(row["folder"])
    for name, data in llm_files().items():
        assert (folder / name).read_bytes() == data
    assert resolve_model("acme/llm-tiny", home / "models", allow_download=False) == folder


def _stderr_on_a_terminal(home: Path, hub: FakeHub, *args: str) -> tuple[int, str]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a new pty is 0 columns wide
    p = _pull_process(home, hub, *args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    p.wait(timeout=120)
    os.close(master)
    return p.returncode, b"".join(chunks).decode(errors="replace")


def test_pull_shows_a_progress_bar_on_a_terminal_and_quiet_hides_it(home, hub):
    rc, err = _stderr_on_a_terminal(home, hub, "acme/llm-tiny")
    assert rc == 0, err
    assert "Fetching 5 files" in err and "100%" in err
    rc, err = _stderr_on_a_terminal(home.parent / "other-home", hub, "acme/whisper-mini", "--quiet")
    assert rc == 0, err
    assert err == ""
