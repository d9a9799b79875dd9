"""The Qwen3-ASR engine on tiny checkpoint folders: loading through the registry, sessions
over real speech (VAD utterances → one final each), bad options, and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from asr.base import ASRError, Final, ModelNotFoundError, Partial, SessionOptions
from asr.qwen3.decoding import Qwen3Decoder
from asr.qwen3.engine import Qwen3Engine
from asr.registry import load_engine
from tests.asr.audio_util import FIXTURES, load
from tests.asr.qwen3.test_decoding import ScriptedQwen

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def engine(qwen3_original) -> Qwen3Engine:
    return load_engine("qwen3", str(qwen3_original))


def _run(session, audio: np.ndarray, block: int = 1600) -> list:
    events = []
    for i in range(0, audio.size, block):
        session.feed_audio(audio[i : i + block])
        events += session.step()
    return events + session.finish()


def _speech() -> np.ndarray:
    """Two espeak sentences with two seconds of silence between them."""
    gap = np.zeros(32000, np.float32)
    return np.concatenate([load(FIXTURES / "es01.flac"), gap, load(FIXTURES / "es02.flac"), gap])


def test_registry_loads_every_layout(engine, qwen3_mlx_8bit):
    assert engine.name == "qwen3" and engine.layout == "original"
    assert engine.capabilities.languages[:3] == ("ar", "yue", "zh") and not engine.capabilities.native_streaming
    est = engine.memory_estimate()
    assert est.weights_bytes == sum(v.nbytes for v in _params(engine.net)) and est.runtime_bytes > 0
    q = load_engine("qwen3", str(qwen3_mlx_8bit))
    assert q.layout == "mlx"


def _params(model):
    from mlx.utils import tree_flatten

    return [v for _, v in tree_flatten(model.parameters())]


@pytest.mark.parametrize("partials", [False, True])
def test_one_final_per_utterance_with_its_own_times(engine, tok_answer, partials):
    engine_decoder = engine.decoder
    scripted = ScriptedQwen(engine.tokenizer, tok_answer)
    engine.decoder = Qwen3Decoder(scripted, engine.tokenizer)
    try:
        events = _run(engine.start_session(SessionOptions(partials=partials, language="en")), _speech())
    finally:
        engine.decoder = engine_decoder
    finals = [e for e in events if isinstance(e, Final)]
    es01 = load(FIXTURES / "es01.flac").size / 16000
    assert [f.text for f in finals] == ["we agreed"] * 2
    assert finals[0].start < 0.5 and abs(finals[0].end - es01) < 0.6
    assert finals[1].start > es01 + 1.5 and finals[1].end < _speech().size / 16000
    if partials:
        assert any(isinstance(e, Partial) and e.text for e in events)
    else:
        assert not any(isinstance(e, Partial) for e in events)


@pytest.fixture
def tok_answer() -> str:
    return "language English<asr_text>we agreed"


def test_random_weights_run_end_to_end_and_never_leak_the_tag(engine):
    for options in (SessionOptions(partials=False), SessionOptions(context="Anya, Kubernetes, Q3 OKRs")):
        events = _run(engine.start_session(options), _speech())
        for e in events:
            assert "<asr_text>" not in e.text and not e.text.startswith("language ")


def test_bad_options_and_models_are_one_line(engine, tmp_path):
    with pytest.raises(ASRError, match="does not support language 'xx'"):
        engine.start_session(SessionOptions(language="xx"))
    with pytest.raises(ModelNotFoundError, match="unknown Qwen3-ASR model"):
        Qwen3Engine("qwen3-asr-9b")
    with pytest.raises(ModelNotFoundError, match="not downloaded"):
        Qwen3Engine("qwen3-asr-0.6b", cache_dir=tmp_path, allow_download=False)


def test_a_tokenizer_that_does_not_fit_the_model_is_refused(qwen3_original, tmp_path):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(qwen3_original, folder)
    config = json.loads((folder / "config.json").read_text())
    config["thinker_config"]["audio_token_id"] = 7
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ASRError, match="<|audio_pad|> does not match"):
        Qwen3Engine(str(folder))


def notetaker(*args, home: Path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NOTETAKER_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "notetaker", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def test_cli_transcribes_with_context(qwen3_original, tmp_path):
    run = notetaker("transcribe", FIXTURES / "es01.flac", "--engine", "qwen3", "--model", qwen3_original,
                    "--context", "Anya, Kubernetes, Q3 OKRs", "--json", home=tmp_path)
    assert run.returncode == 0, run.stderr
    events = [json.loads(line) for line in run.stdout.splitlines()]
    assert events[0]["type"] == "session" and events[0]["engine"] == "qwen3"
    assert events[-1]["event"] == "finished" and events[-1]["status"] == "complete"

    bad = notetaker("transcribe", FIXTURES / "es01.flac", "--engine", "qwen3", "--model", qwen3_original,
                    "--language", "xx", home=tmp_path)
    # Checked before the model loads (or downloads), naming the languages it knows.
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "unknown language code 'xx' for qwen3" in bad.stderr and "yue" in bad.stderr


def test_the_vocabulary_joins_the_context_and_then_the_snapper(engine, monkeypatch):
    from asr.vocabulary import SnappingSession

    seen, transcribe = [], engine.decoder.transcribe

    def spy(audio, context="", **kw):
        seen.append(context)
        return transcribe(audio, context=context, **kw)

    monkeypatch.setattr(engine.decoder, "transcribe", spy)
    s = engine.start_session(SessionOptions(partials=False, context="Weekly sync.", vocabulary=("Anya", "Kubernetes")))
    _run(s, _speech())
    assert isinstance(s, SnappingSession)
    assert seen and set(seen) == {"Weekly sync. Anya, Kubernetes."}
