"""The `mlx` backend on a tiny random-weight model that mlx-lm loads exactly as a hub
download: prompt building, streaming, greedy decoding, the limits, and one-line errors.

The reference is computed independently of mlx-lm's generation code: the chat template
rendered by hand, encoded with `tokenizers`, then a plain greedy loop over full forward
passes (no KV cache), decoded with `tokenizers`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rewrite.base import Message, RewriteError
from rewrite.mlx_llm import DEFAULT_MODEL, MAX_CONTEXT, SMALL_MODEL, MlxBackend
from tests.rewrite.tiny_llm import EOS

MESSAGES = (
    Message("system", "You summarise meetings."),
    Message("user", "Anya owns the migration plan. Ben reviews the database changes by Friday."),
)
REF_TOKENS = 24


def _tokenizer(folder: Path):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(folder / "tokenizer.json"))


def _by_hand(messages) -> str:
    turns = "".join(f"<|{m.role}|>\n{m.content}<|end|>\n" for m in messages)
    return f"<|begin|>{turns}<|assistant|>\n"


def _greedy(backend: MlxBackend, ids: list[int], n: int, eos: set[int]) -> list[int]:
    import mlx.core as mx

    out: list[int] = []
    for _ in range(n):
        logits = backend._model(mx.array([ids + out]))[0, -1]
        token = int(mx.argmax(logits).item())
        if token in eos:
            break
        out.append(token)
    return out


@pytest.fixture(scope="module")
def reference(mlx_backend, tiny_llm) -> list[int]:
    """The first REF_TOKENS greedy tokens for MESSAGES (no end-of-turn token among them)."""
    ids = _tokenizer(tiny_llm).encode(_by_hand(MESSAGES)).ids
    tokens = _greedy(mlx_backend, ids, REF_TOKENS, eos=set())
    assert _tokenizer(tiny_llm).token_to_id(EOS) not in tokens  # else pick other messages
    return tokens


def _text(folder: Path, tokens: list[int]) -> str:
    """The reply the tokens spell. mlx-lm's byte-level detokenizer drops one leading space
    at the start of a reply (the reply to "<|assistant|>\n" starts a line)."""
    text = _tokenizer(folder).decode(tokens, skip_special_tokens=False)
    return text.removeprefix(" ")


def _copy(src: Path, dst: Path, **config) -> Path:
    shutil.copytree(src, dst)
    if config:
        data = json.loads((dst / "config.json").read_text())
        data.update(config)
        (dst / "config.json").write_text(json.dumps(data))
    return dst


def _one_line(e: pytest.ExceptionInfo) -> str:
    text = str(e.value)
    assert text and "\n" not in text and "Traceback" not in text
    return text


def test_loads_a_folder_like_a_hub_model(mlx_backend, tiny_llm):
    caps = mlx_backend.capabilities
    assert (caps.backend, caps.model, caps.context_tokens, caps.experimental) == ("mlx", str(tiny_llm), 2048, False)
    assert mlx_backend.name == "mlx"
    # 2 layers x 2 KV heads x 16 dims x (K and V) x float32 on the CPU
    assert mlx_backend.kv_bytes_per_token() == 2 * 2 * 16 * 2 * 4
    assert mlx_backend.weight_bytes > 0


def test_prompt_is_the_chat_template_with_the_reply_opened(mlx_backend, tiny_llm):
    assert mlx_backend.prompt_ids(MESSAGES) == _tokenizer(tiny_llm).encode(_by_hand(MESSAGES)).ids


def test_streams_pieces_that_join_to_the_greedy_text(mlx_backend, tiny_llm, reference):
    pieces = list(mlx_backend.complete(MESSAGES, max_tokens=REF_TOKENS))
    assert len(pieces) >= REF_TOKENS // 2  # streamed, not one blob at the end
    assert all(isinstance(p, str) and p for p in pieces)
    assert "".join(pieces) == _text(tiny_llm, reference)
    assert mlx_backend.last_finish_reason == "length"


def test_greedy_is_deterministic(mlx_backend):
    first = "".join(mlx_backend.complete(MESSAGES, 16, temperature=0.0))
    assert all("".join(mlx_backend.complete(MESSAGES, 16)) == first for _ in range(2))


@pytest.mark.parametrize("n", [1, 2, 7])
def test_stops_after_max_tokens(mlx_backend, tiny_llm, reference, n):
    assert "".join(mlx_backend.complete(MESSAGES, max_tokens=n)) == _text(tiny_llm, reference[:n])
    assert mlx_backend.last_finish_reason == "length"


def test_sampling_with_a_temperature(mlx_backend):
    import mlx.core as mx

    runs = []
    for _ in range(2):
        mx.random.seed(7)
        runs.append("".join(mlx_backend.complete(MESSAGES, 12, temperature=1.0)))
    assert runs[0] and runs[0] == runs[1]


def test_stops_at_the_end_of_turn_token(tiny_llm, reference, tmp_path):
    # Make the 6th reference token an end-of-turn token (as Llama 3 lists several in
    # config.json): the reply is everything before its first use, and nothing after.
    stop = reference[5]
    first = reference.index(stop)
    eos = _tokenizer(tiny_llm).token_to_id(EOS)
    backend = MlxBackend(str(_copy(tiny_llm, tmp_path / "m", eos_token_id=[eos, stop])))
    assert "".join(backend.complete(MESSAGES, max_tokens=REF_TOKENS)) == _text(tiny_llm, reference[:first])
    assert backend.last_finish_reason == "stop"


def test_count_tokens_matches_the_tokenizer(mlx_backend, tiny_llm):
    tok = _tokenizer(tiny_llm)
    for text in ["", "Anya owns the migration plan.", "Budget is tight this quarter,\nso hiring waits.",
                 "zebra QUIZ 1234 !?", "<|end|> is special"]:
        assert mlx_backend.count_tokens(text) == len(tok.encode(text, add_special_tokens=False).ids)


def test_context_comes_from_the_config_capped(tiny_llm, reference, tmp_path):
    big = MlxBackend(str(_copy(tiny_llm, tmp_path / "big", max_position_embeddings=131072)))
    assert big.capabilities.context_tokens == MAX_CONTEXT
    prompt = len(big.prompt_ids(MESSAGES))
    # A budget lowers it; the reply then stops where prompt + reply fill the context.
    small = MlxBackend(str(tiny_llm), context_tokens=prompt + 3)
    assert small.capabilities.context_tokens == prompt + 3
    assert "".join(small.complete(MESSAGES, max_tokens=50)) == _text(tiny_llm, reference[:3])
    assert small.last_finish_reason == "length"
    with pytest.raises(RewriteError) as e:
        MlxBackend(str(tiny_llm), context_tokens=prompt).complete(MESSAGES, 10)
    assert f"the prompt takes {prompt} tokens" in _one_line(e)


def test_template_errors_are_one_line(tiny_llm, tmp_path):
    folder = _copy(tiny_llm, tmp_path / "m")
    cfg = json.loads((folder / "tokenizer_config.json").read_text())
    cfg["chat_template"] = ("{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not "
                            "supported') }}{% endif %}{% for m in messages %}{{ m['content'] }}{% endfor %}")
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg))
    backend = MlxBackend(str(folder))
    with pytest.raises(RewriteError) as e:
        backend.complete(MESSAGES, 5)
    assert "System role not supported" in _one_line(e)
    assert "".join(backend.complete(MESSAGES[1:], 3))  # without the system turn it works


def test_a_model_without_chat_template_is_refused(tiny_llm, tmp_path):
    folder = _copy(tiny_llm, tmp_path / "base")
    cfg = json.loads((folder / "tokenizer_config.json").read_text())
    del cfg["chat_template"]
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg))
    with pytest.raises(RewriteError) as e:
        MlxBackend(str(folder))
    assert "no chat template" in _one_line(e)


def _not_an_llm(tmp_path: Path, tiny_llm: Path) -> dict[str, Path]:
    whisper = tmp_path / "whisper"
    whisper.mkdir()
    (whisper / "config.json").write_text(json.dumps({"model_type": "whisper", "d_model": 384}))
    (whisper / "model.safetensors").write_bytes(b"\0" * 16)
    no_weights = _copy(tiny_llm, tmp_path / "no-weights")
    for f in no_weights.glob("model*.safetensors*"):
        f.unlink()
    truncated = _copy(tiny_llm, tmp_path / "truncated")
    data = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[: len(data) // 2])
    empty = tmp_path / "empty"
    empty.mkdir()
    return {"whisper": whisper, "no-weights": no_weights, "truncated": truncated, "empty": empty}


def test_folders_that_are_not_llms_fail_in_one_line(tiny_llm, tmp_path):
    for name, folder in _not_an_llm(tmp_path, tiny_llm).items():
        with pytest.raises(RewriteError) as e:
            MlxBackend(str(folder))
        assert str(folder) in _one_line(e), name


@pytest.mark.parametrize("spec, expect", [
    (None, DEFAULT_MODEL),
    ("llama-3.2-1b", SMALL_MODEL),
    ("mlx-community/No-Such-Model-4bit", "mlx-community/No-Such-Model-4bit"),
    ("/no/such/folder", "no model folder at /no/such/folder"),
])
def test_missing_models_fail_in_one_line(spec, expect):
    # The test session runs with HF_HUB_OFFLINE=1 and an empty private hub cache.
    with pytest.raises(RewriteError) as e:
        MlxBackend(spec)
    assert expect in _one_line(e)
    with pytest.raises(RewriteError) as e:
        MlxBackend(spec, allow_download=False)
    assert expect in _one_line(e)


def test_importing_the_backend_does_not_import_mlx_lm():
    code = "import sys, rewrite.mlx_llm; sys.exit('mlx_lm' in sys.modules or 'transformers' in sys.modules)"
    root = Path(__file__).resolve().parents[2]
    assert subprocess.run([sys.executable, "-c", code], cwd=root, check=False).returncode == 0


def test_quantized_models_on_the_cpu(tmp_path):
    # mlx-community checkpoints are 4-bit: expanded to float32 by default on the CPU where
    # that fits; kept 4-bit on request, with the prompt's many-row products through BLAS
    # on weights expanded per product. Both give the same greedy text here.
    from asr.runtime.mlxrt import on_cpu
    from tests.rewrite.tiny_llm import llama_config, write_llm

    if not on_cpu():
        pytest.skip("a GPU runs the stored precision")
    folder = write_llm(tmp_path / "q4", llama_config(hidden=128, intermediate=256), bits=4, weight_scale=2.0)
    default, kept = MlxBackend(str(folder)), MlxBackend(str(folder), dequantize=False)
    q_proj = [type(b._model.model.layers[0].self_attn.q_proj).__name__ for b in (default, kept)]
    assert q_proj == ["Linear", "PrefillDequantizedLinear"]
    assert kept.weight_bytes < default.weight_bytes / 4
    text = "".join(default.complete(MESSAGES, 16))
    assert len(text) > 16 and "".join(kept.complete(MESSAGES, 16)) == text
