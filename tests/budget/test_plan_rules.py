"""The plan's rules on candidates with footprints given outright, so every number is easy
to follow: budget, the half-budget share of an automatic speech model, rewrite placement,
Voxtral's text mode, the nearest configuration that fits, and the MLX limits."""

from __future__ import annotations

from asr.runtime.footprint import Footprint, WeightSummary
from notetaker.budget import GiB, Candidate, Machine, Request, budget_bytes, make_plan

MAC16 = Machine("Darwin", "arm64", 16 * GiB, "gpu", "metal", working_set_bytes=int(10.67 * GiB))
LINUX24 = Machine("Linux", "x86_64", 24 * GiB, "cpu")


def fp(total_gb: float) -> Footprint:
    return Footprint(int(total_gb * GiB), 0, 0, int(total_gb * GiB), 2, "as stored")


def asr(name: str, gb: float, rank: int, engine: str = "whisper", cpu: bool = True) -> Candidate:
    return Candidate(name, "asr", engine, engine, name, fp(gb), True, rank, cpu)


def llm(name: str, weights_gb: float, kv_per_token: int, rank: int = 1, window: int = 131072) -> Candidate:
    """An LLM whose footprint is weights + kv_per_token x context (llm_working's KV term with
    no activations): built from a WeightSummary and a shape, as the plan re-costs it."""
    n = int(weights_gb * GiB) // 2  # float16 elements
    shape = {"layers": 1, "kv_heads": 1, "head_dim": kv_per_token // 4, "heads": 1, "hidden": 0, "ffn": 0,
             "vocab": 0, "window": window}
    return Candidate(name, "rewrite", "llm", "mlx", name, fp(weights_gb), True, rank, context=None, window=window,
                     weights=WeightSummary(2 * n, n, 0, 0, 0), shape=shape, float_dtype="F16")


def plan(machine, request=Request(), asrs=(), llms=(), probe=False, cap=None, bundled=None):
    def candidates(kind):
        return sorted(asrs if kind == "asr" else llms, key=lambda c: -c.rank)

    def resolve(kind, engine, model):
        for c in (*asrs, *llms):
            if c.name == model:
                return c
        return Candidate(model or "?", kind, engine, engine, model or "?", None, False)

    return make_plan(machine, request, candidates, resolve, probe_passed=lambda c: probe, cap_bytes=cap,
                     bundled=bundled or asr("tiny.en", 0.25, 0))


def test_budget_is_total_less_reserve_bounded_by_working_set_and_cap():
    # 16 GB: reserve max(2, 4) = 4 GB -> 12 GB, then the working set 10.67 GB wins.
    assert budget_bytes(MAC16)[0] == int(10.67 * GiB)
    # 8 GB Linux: reserve max(2, 2) = 2 -> 6 GB; 64 GB: reserve 16 -> 48 GB.
    assert budget_bytes(Machine("Linux", "x86_64", 8 * GiB, "cpu"))[0] == 6 * GiB
    assert budget_bytes(Machine("Linux", "x86_64", 64 * GiB, "cpu"))[0] == 48 * GiB
    assert budget_bytes(LINUX24, cap_bytes=3 * GiB)[0] == 3 * GiB


def test_automatic_speech_model_is_the_best_that_fits_half_the_budget():
    big, mid = asr("big", 6.0, 3, "voxtral"), asr("mid", 3.5, 2, "voxtral")
    p = plan(MAC16, asrs=[big, mid])
    assert p.asr is mid  # 6 GB > 10.67 / 2
    assert any("more than half the budget" in r for r in p.reasons)
    assert p.fits


def test_cpu_skips_models_that_do_not_keep_up_and_falls_back_to_bundled():
    slow = asr("voxtral-4bit", 3.5, 5, "voxtral", cpu=False)
    p = plan(LINUX24, asrs=[slow])
    assert p.asr.name == "tiny.en"
    assert any("slower than real time" in r for r in p.reasons)


def test_explicit_model_that_does_not_fit_names_the_nearest_that_does():
    huge = asr("fp16", 12.0, 3, "voxtral")
    small = asr("4bit", 3.5, 2, "voxtral")
    p = plan(MAC16, Request(engine="voxtral", model="fp16"), asrs=[huge, small])
    assert not p.fits
    assert "needs 12.0 GB" in p.problem and "10.7 GB" in p.problem
    assert p.suggestion.startswith("--engine voxtral --model 4bit")


def test_rewrite_beside_the_speech_model_takes_the_largest_context_that_fits():
    speech = asr("4bit", 4.0, 2, "voxtral")
    # weights 2 GB + 128 KiB/token: 32k -> 2 + 4 = 6 GB, 16k -> 4 GB; room 10.67 - 4 = 6.67 GB.
    model = llm("llama", 2.0, 128 * 1024)
    p = plan(MAC16, asrs=[speech], llms=[model])
    assert p.rewrite_backend == "mlx" and p.rewrite_live
    assert p.rewrite.context == 32768
    assert p.during == [speech, p.rewrite] and p.after == []
    small_room = plan(MAC16, asrs=[asr("5.5", 5.5, 2, "voxtral")], llms=[model], request=Request(engine="voxtral",
                                                                                                  model="5.5"))
    assert small_room.rewrite.context == 16384  # 10.67 - 5.5 = 5.17 GB: 32k (6 GB) does not fit


def test_voxtral_text_mode_when_it_passed_its_probe_and_no_llm_fits_beside():
    speech = asr("vox", 5.0, 2, "voxtral")
    model = llm("llama", 6.0, 128 * 1024)  # 6 + 0.5 (4k) = 6.5 > 10.67 - 5
    p = plan(MAC16, asrs=[speech], llms=[model], probe=True)
    assert p.rewrite_backend == "voxtral" and p.rewrite is None and p.rewrite_live
    q = plan(MAC16, asrs=[speech], llms=[model], probe=False)
    assert q.rewrite_backend == "mlx" and not q.rewrite_live  # after the meeting, alone
    assert q.after == [q.rewrite] and q.rewrite.context == 32768  # alone: 6 + 4 (32k) = 10 GB <= 10.67
    assert q.rewrite.footprint.total <= q.budget


def test_asked_for_llm_that_fits_nowhere_is_a_problem_with_a_smaller_one_offered():
    speech = asr("tiny", 0.3, 1)
    huge = llm("llama-70b", 40.0, 320 * 1024, rank=3)
    small = llm("llama-1b", 0.7, 32 * 1024, rank=1)
    p = plan(MAC16, Request(rewrite_backend="mlx", rewrite_model="llama-70b"), asrs=[speech], llms=[huge, small])
    assert not p.fits and "llama-70b" in p.problem
    assert "llama-1b" in p.suggestion


def test_mlx_limits_follow_the_budget_and_the_peak():
    speech = asr("4bit", 4.0, 2, "voxtral")
    p = plan(MAC16, asrs=[speech])
    assert p.memory_limit == p.budget
    # cache: min(budget - peak, budget / 4) = min(6.67, 2.67) GB
    assert p.cache_limit == int(p.budget * 0.25)
    tight = plan(MAC16, Request(engine="voxtral", model="10"), asrs=[asr("10", 10.0, 2, "voxtral")])
    assert tight.cache_limit == tight.budget - int(10.0 * GiB)


def test_no_rewrite_model_downloaded_means_none_with_a_hint():
    p = plan(LINUX24, asrs=[])
    assert p.rewrite_backend == "none" and p.rewrite is None
    assert any("models pull" in r for r in p.reasons)
    assert p.as_dict()["during_meeting"] == ["tiny.en"]


def test_the_probe_counts_only_for_the_voxtral_folder_it_was_run_on(tmp_path):
    """probes.json keys results by "voxtral:<folder>|<layout>|<bytes>" (rewrite.probe.model_key)."""
    import json
    from types import SimpleNamespace

    from notetaker.budget import probe_passed

    home, probed, other = tmp_path / "home", tmp_path / "vox4", tmp_path / "vox16"
    for d in (home, probed, other):
        d.mkdir()
    settings = SimpleNamespace(home=home)
    vox = Candidate("vox", "asr", "voxtral", "voxtral", "vox", fp(4), True, folder=probed)
    assert not probe_passed(settings, vox)  # no probes.json yet
    entry = {"score": 0.875, "passed": True, "date": "2026-11-21", "probe": 1}
    (home / "probes.json").write_text(json.dumps({"version": 1, "probes": {
        f"voxtral:{probed.resolve()}|mlx|123": entry,
        f"voxtral:{other.resolve()}|mlx|456": dict(entry, passed=False)}}))
    assert probe_passed(settings, vox)
    assert not probe_passed(settings, Candidate("v16", "asr", "voxtral", "voxtral", "v16", fp(9), True,
                                                folder=other))
    (home / "probes.json").write_text("{broken")
    assert not probe_passed(settings, vox)
