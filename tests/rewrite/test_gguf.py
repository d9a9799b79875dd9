"""The mlx backend on a real GGUF (SmolLM2-135M-Instruct, Q4_1 with a Q8_0 embedding,
llama architecture) against transformers loading the same file (test-only: torch,
transformers, gguf, accelerate).

Both sides dequantize the same 4- and 8-bit codes exactly to float32 (d * q + m), so they
run the same weights: what is left is float32 summation order through 30 layers. Logits
(magnitude up to ~40) agree to ~1e-4 here; LOGIT_TOLERANCE leaves 10x room for other
BLAS builds. A wrong Q/K row order, tokenizer or template shows as errors of order 1.
"""

from __future__ import annotations

import pytest

from rewrite.base import Message, Segment
from rewrite.cleanup import is_faithful

LOGIT_TOLERANCE = 1e-3
GREEDY_TOKENS = 64
PROMPTS = (
    [Message("user", "What is the capital of France? Answer in one sentence.")],
    [Message("system", "You summarise meetings."),
     Message("user", "Anya owns the migration plan. Ben reviews the database changes by Friday. Summarise.")],
    [Message("user", "Write a Python function that returns the n-th Fibonacci number.")],
)
TEXTS = (
    "Hello world", "  leading and trailing spaces  ", "Zürich, naïve café — 東京タワー 🚀 Ünïcödé",
    "1234567890 3.14159 -42 1e10 2026-12-04 12:30", "def f(x):\n    return x ** 2  # square\n\tindented",
    "<|im_start|>user\nhi<|im_end|>", "I'm sure you're right; they'll've gone.", "\n\n\r\n  \n", "",
    "ÀÉÎÕÜ ßæøå ąčęėįšųūž ğış", "السلام عليكم", "Привет, мир!", "{\"key\": [1, 2, 3], 'x': None}",
)
CHATS = (
    [{"role": "user", "content": "hi"}],
    [{"role": "system", "content": "You clean transcripts."}, {"role": "user", "content": "um so yeah"}],
    [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c ✓"}],
)


@pytest.fixture(scope="module")
def reference(smollm2_gguf):
    """transformers' model and tokenizer from the same GGUF file (float32)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    folder, name = str(smollm2_gguf.parent), smollm2_gguf.name
    # One thread: two on a shared 2-core machine made torch's decoding ~5x slower here.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    model.eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
    yield model, tokenizer
    torch.set_num_threads(threads)


def _ids(encoded) -> list[int]:
    """transformers 5 returns a BatchEncoding from apply_chat_template; 4 a list."""
    return list(encoded["input_ids"] if hasattr(encoded, "keys") else encoded)


def _reference_greedy(model, ids: list[int], n: int) -> list[int]:
    import torch

    out: list[int] = []
    with torch.no_grad():
        past, step = None, torch.tensor([ids])
        for _ in range(n):
            r = model(step, cache=past, use_cache=True)
            past = r.past_key_values
            token = int(r.logits[0, -1].argmax())
            out.append(token)
            step = torch.tensor([[token]])
    return out


def _our_greedy(backend, ids: list[int], n: int) -> list[int]:
    """Our model through mlx-lm's token loop with a KV cache, not stopped at end of turn."""
    import mlx.core as mx
    from mlx_lm.generate import generate_step
    from mlx_lm.models.cache import make_prompt_cache

    steps = generate_step(mx.array(ids), backend._model, max_tokens=n, sampler=lambda x: mx.argmax(x, axis=-1),
                          prompt_cache=make_prompt_cache(backend._model))
    return [token for token, _ in steps]


def test_loads_as_a_quantized_llama(smollm2, smollm2_gguf):
    caps = smollm2.capabilities
    assert (caps.backend, caps.model, caps.context_tokens) == ("mlx", str(smollm2_gguf), 8192)
    cfg = smollm2._config
    assert (cfg["model_type"], cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["num_key_value_heads"],
            cfg["tie_word_embeddings"]) == ("llama", 30, 9, 3, True)
    assert cfg["quantization"]["bits"] == 4 and cfg["quantization"]["model.embed_tokens"]["bits"] == 8
    assert smollm2.kv_bytes_per_token() == 2 * 30 * 3 * 64 * 4  # float32 on the CPU


def test_packed_layers_stay_packed_on_request(smollm2_gguf):
    import mlx.nn as nn

    from rewrite.gguf import load_model

    model, _, _ = load_model(smollm2_gguf)
    attn = model.model.layers[0].self_attn
    assert isinstance(attn.q_proj, nn.QuantizedLinear) and (attn.q_proj.bits, attn.q_proj.group_size) == (4, 32)
    assert isinstance(model.model.embed_tokens, nn.QuantizedEmbedding) and model.model.embed_tokens.bits == 8


def test_logits_match_transformers(smollm2, reference):
    import mlx.core as mx
    import numpy as np
    import torch

    model, tokenizer = reference
    for messages in PROMPTS:
        ids = smollm2.prompt_ids(messages)
        ours = np.array(smollm2._model(mx.array([ids]))[0].astype(mx.float32))
        with torch.no_grad():
            theirs = model(torch.tensor([ids])).logits[0].numpy()
        assert ours.shape == theirs.shape
        assert np.abs(ours - theirs).max() < LOGIT_TOLERANCE
        assert (ours.argmax(-1) == theirs.argmax(-1)).all()


def test_greedy_tokens_match_transformers(smollm2, reference):
    model, tokenizer = reference
    for messages in PROMPTS:
        ids = smollm2.prompt_ids(messages)
        ours = _our_greedy(smollm2, ids, GREEDY_TOKENS)
        assert ours == _reference_greedy(model, ids, GREEDY_TOKENS)
        # The backend's reply is those tokens' text up to the first end-of-turn token.
        stops = smollm2._tokenizer.eos_token_ids
        first_stop = next((i for i, t in enumerate(ours) if t in stops), len(ours))
        reply = "".join(smollm2.complete(messages, GREEDY_TOKENS))
        assert reply == tokenizer.decode(ours[:first_stop])
        assert smollm2.last_finish_reason == ("stop" if first_stop < len(ours) else "length")
    assert "Paris" in "".join(smollm2.complete(PROMPTS[0], 32))


def test_tokenizer_matches_transformers(smollm2, reference):
    _, tokenizer = reference
    ours = smollm2._tokenizer
    for text in TEXTS:
        ids = ours.encode(text, add_special_tokens=False)
        assert ids == tokenizer.encode(text, add_special_tokens=False), text
        assert ours.decode(ids) == tokenizer.decode(ids) == text
        assert smollm2.count_tokens(text) == len(ids)
    everything = list(range(len(ours.tokens)))
    assert ours.decode(everything) == tokenizer.decode(everything)
    assert ours.eos_token_ids == {tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.eos_token_id,
                                  tokenizer.convert_tokens_to_ids("<|endoftext|>")}


def test_chat_template_matches_transformers(smollm2, reference):
    _, tokenizer = reference
    ours = smollm2._tokenizer
    for chat in CHATS:
        for opened in (True, False):
            assert ours.render_chat(chat, opened) == tokenizer.apply_chat_template(
                chat, tokenize=False, add_generation_prompt=opened)
        assert ours.apply_chat_template(chat) == _ids(tokenizer.apply_chat_template(chat, add_generation_prompt=True))


def test_streamed_text_is_whole_characters(smollm2):
    text = "Zürich 東京 🚀 done"
    ids = smollm2._tokenizer.encode(text, add_special_tokens=False)
    pieces = list(smollm2._tokenizer.stream_text(ids))
    assert "".join(pieces) == text and "\ufffd" not in "".join(pieces)


TRANSCRIPT = [
    Segment(3, 0.0, 4.0, "um so good morning everyone uh let's let's start with the release"),
    Segment(5, 4.0, 9.0, "anya will own the migration plan and ben reviews the database changes by friday"),
    Segment(8, 9.0, 14.0, "we decided to roll back the cache change and measure again next week"),
    Segment(9, 14.0, 18.0, "carla writes the summary and sends it to the customer team"),
]


def test_cleanup_and_summary_keep_their_guards(smollm2):
    """End to end on real weights: whatever the small model writes, cleanup keeps only
    faithful lines (else the raw text) and the summary cites only segments that exist."""
    from rewrite.summarize import Summarizer

    cleaned = smollm2.cleanup(TRANSCRIPT)
    assert len(cleaned) == len(TRANSCRIPT)
    for seg, text in zip(TRANSCRIPT, cleaned):
        assert text == seg.text or is_faithful(seg.text, text)
    summarizer = Summarizer(smollm2, max_output_tokens=160)
    streamed = "".join(summarizer.stream(TRANSCRIPT))
    result = summarizer.result
    assert streamed.strip() and result.markdown.strip()
    ids = {s.id for s in TRANSCRIPT}
    assert all(set(c.segment_ids) <= ids for c in result.citations)
    assert "[#1]" not in result.markdown and "[#99]" not in result.markdown
