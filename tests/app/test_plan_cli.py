"""The memory plan in the commands: a configuration that does not fit is refused before
anything loads (or downloads) with the nearest one that fits; the default engine comes from
the plan; `doctor` prints the plan (text and JSON)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from asr.runtime.family import CatalogueModel
from notetaker.cli import main
from tests.asr.whisper.conftest import hf_tiny_dir, hf_tiny_model  # noqa: F401  (fixtures)

from .fake_hub import FakeHub


def one_line(run) -> str:
    assert run.rc == 2, run.err
    lines = run.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("notetaker: ") and "Traceback" not in run.err, run.err
    return lines[0]


def test_a_speech_model_that_does_not_fit_is_refused_before_loading_with_the_nearest_that_fits(cli):
    t = time.monotonic()
    run = cli("transcribe", "--sample", "--engine", "voxtral", "--model", "voxtral-mini-4b-realtime-fp16",
              env={"NOTETAKER_MEMORY_BUDGET_GB": "4"})
    line = one_line(run)
    # Not downloaded: the catalogue's published shapes decide, and nothing is fetched.
    assert "voxtral-mini-4b-realtime-fp16 needs" in line and "budget is 4.0 GB" in line
    assert "nearest that fits: --engine whisper --model tiny.en" in line
    assert time.monotonic() - t < 30
    assert cli("sessions", "--json").out == ""  # nothing was saved
    assert not (cli.home / "models").exists()


def test_a_rewrite_model_that_fits_nowhere_leaves_cleanup_off_and_says_what_to_use(cli):
    # The meeting is not refused for its rewrite model (issue 17): it records, and one line
    # says why cleanup is off and what would fit.
    run = cli("transcribe", "--sample", "--rewrite", "mlx", env={"NOTETAKER_REWRITE_MODEL": "llama-3.1-8b",
                                                                   "NOTETAKER_MEMORY_BUDGET_GB": "2"})
    assert run.rc == 0, run.err
    [line] = [x for x in run.err.splitlines() if "cleanup is off" in x]
    assert "llama-3.1-8b needs" in line and "4096-token context" in line and "budget is 2.0 GB" in line
    assert "nearest that fits: --rewrite none" in line
    assert json.loads(cli("sessions", "--json").out)["status"] == "complete"


def test_doctor_prints_the_plan(cli):
    run = cli("doctor", "--json", env={"NOTETAKER_MEMORY_BUDGET_GB": "3"})
    assert run.rc == 0, run.err
    plan = json.loads(run.out)["plan"]
    assert plan["budget_bytes"] == 3 * 2**30
    assert plan["asr"]["name"] == "tiny.en" and plan["asr"]["downloaded"]
    assert plan["rewrite_backend"] == "none" and plan["during_meeting"] == ["tiny.en"]
    assert plan["memory_limit_bytes"] == 3 * 2**30 and 0 < plan["cache_limit_bytes"] <= 3 * 2**30 // 4
    assert plan["asr"]["bytes"]["total"] == sum(plan["asr"]["bytes"][k] for k in ("weights", "kv", "activations"))
    assert any("memory_budget_gb caps it" in r for r in plan["reasons"])
    text = cli("doctor", env={"NOTETAKER_MEMORY_BUDGET_GB": "3"}).out
    assert "budget     3.0 GB for models" in text and "meeting    tiny.en" in text and "mlx limits" in text


def test_doctor_reports_a_configured_model_that_does_not_fit(cli):
    cli.home.mkdir(parents=True)
    (cli.home / "config.toml").write_text('engine = "qwen3"\nmodel = "qwen3-asr-1.7b"\nmemory_budget_gb = 2\n')
    run = cli("doctor", "--json")
    assert run.rc == 0, run.err
    report = json.loads(run.out)
    assert not report["plan"]["fits"]
    assert any(p.startswith("memory plan: qwen3-asr-1.7b needs") for p in report["problems"])


# -- the default engine is the plan's: the best downloaded model that fits ----------------------


@pytest.fixture
def downloaded_whisper(hf_tiny_dir, tmp_path, monkeypatch, capsys):
    """A home where the catalogue's best speech model, here "large-v3-turbo" (served as a tiny
    random Whisper in the transformers layout), was pulled from a hub on localhost."""
    import huggingface_hub.constants as c

    import notetaker.catalogue
    from asr.runtime.footprint import folder_tensors, summarize
    from asr.whisper.weights import read_dims

    files = {p.name: p.read_bytes() for p in hf_tiny_dir.iterdir() if p.is_file()}
    dims = read_dims(hf_tiny_dir).__dict__
    best = CatalogueModel("large-v3-turbo", "asr", "whisper", "whisper", "openai/whisper-large-v3-turbo",
                          "99 languages", 99,
                          True, summarize(folder_tensors(hf_tiny_dir)), dims, "F32")
    bundled = next(m for m in notetaker.catalogue.CATALOGUE if m.name == "tiny.en")
    monkeypatch.setattr(notetaker.catalogue, "CATALOGUE", (best, bundled))
    hub = FakeHub().start()
    hub.add(best.repo, files)
    monkeypatch.setattr(c, "ENDPOINT", hub.url)
    monkeypatch.setattr(c, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", False)
    home = tmp_path / "home"
    assert main(["--home", str(home), "models", "pull", "large-v3-turbo", "--quiet"]) == 0
    hub.stop()
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    capsys.readouterr()
    yield home


def test_the_default_engine_is_the_best_downloaded_model_that_fits(downloaded_whisper, capsys):
    home = downloaded_whisper
    assert main(["--home", str(home), "transcribe", "--sample", "--json"]) == 0
    session = json.loads(capsys.readouterr().out.splitlines()[0])
    assert (session["engine"], session["model"]) == ("whisper", "large-v3-turbo")
    # Capped below what it takes, the plan falls back to the bundled tiny.en.
    (home / "config.toml").write_text("memory_budget_gb = 0.05\n")
    assert main(["--home", str(home), "doctor", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)["plan"]
    assert plan["asr"]["name"] == "tiny.en"
    assert any("large-v3-turbo" in r and "half the budget" in r for r in plan["reasons"])


def test_a_registered_local_model_runs_by_its_name(hf_tiny_dir, tmp_path, capsys):
    home = tmp_path / "home"
    mine = shutil.copytree(hf_tiny_dir, tmp_path / "my-whisper")
    assert main(["--home", str(home), "models", "add", str(mine), "--name", "mine"]) == 0
    capsys.readouterr()
    assert main(["--home", str(home), "transcribe", "--sample", "--json", "--engine", "whisper",
                 "--model", "mine"]) == 0
    session = json.loads(capsys.readouterr().out.splitlines()[0])
    assert Path(session["model"]).resolve() == mine.resolve()
