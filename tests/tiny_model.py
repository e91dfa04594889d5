"""A tiny stand-in for SmolLM2-135M, for the tests whose assertions do not
depend on the real model's numbers (``pytest --test-model=tiny``, which is
what ``make test-fast`` runs).

It is SmolLM2 in miniature: the same Llama architecture and the same
tokenizer (so ids, texts and the 49,152-token vocabulary are the real ones),
but 2 layers of width 64 (under 5% of its weights, nearly all of them the
49,152-row embedding and output layer) drawn from a fixed seed, so a forward
pass costs a small fraction of the real one and loading it about a second.

Random weights alone give a near-uniform distribution (no token reaches the
wheel's 1% threshold). The output layer is therefore drawn with a larger
spread, so that the logits have a standard deviation of ``LOGIT_STD``: every
context then gets a shape like a language model's, a few tokens of 5-40%, a
dozen above 1%, and a long tail holding most of the rest, deterministically.

The directory is written once per machine into the model cache
(``MODELWORKER["CACHE_DIR"]``), keyed by the recipe below, the transformers
release and the real model's weights, and registered like any local model.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import shutil
from pathlib import Path

SEED = 20240611
LOGIT_STD = 4.0
SHAPE = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,  # grouped-query attention, as in SmolLM2
    "max_position_embeddings": 8192,
}


def tiny_model_dir(real_spec, cache_dir: Path) -> Path:
    """The tiny model's directory (built on first use), with ``real_spec``'s tokenizer."""
    target = Path(cache_dir) / f"tiny-{real_spec.id}-{_fingerprint(real_spec)}"
    if (target / "config.json").is_file():
        return target
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
    try:
        tokenizer = _tokenizer_of(real_spec)
        build(tokenizer).save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        tmp.rename(target)
    except OSError:
        if not (target / "config.json").is_file():  # not merely another process winning the race
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def build(tokenizer):
    """The tiny model (untrained, deterministic) for ``tokenizer``'s vocabulary."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
        # Untied: scaling a shared matrix would also scale the input embeddings,
        # and the model would then mostly predict the token it just read.
        tie_word_embeddings=False,
        **SHAPE,
    )
    model = LlamaForCausalLM(config)
    # Drawn here from our own generator, not by transformers' initialiser,
    # so a new transformers release cannot change the distributions.
    generator = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, param in sorted(model.named_parameters()):
            if name.endswith("norm.weight"):
                param.fill_(1.0)
            elif name == "lm_head.weight":
                # The final norm makes the hidden state's RMS 1, so each logit's
                # spread is std * sqrt(hidden_size).
                param.normal_(0.0, LOGIT_STD / math.sqrt(config.hidden_size), generator=generator)
            else:
                param.normal_(0.0, config.initializer_range, generator=generator)
    return model.eval()


def _tokenizer_of(real_spec):
    # The engine's own loader: it converts a GGUF file once and keeps the
    # result, so the real model's later loads are fast too.
    from modelworker.engine import load_model

    _, tokenizer = load_model(real_spec, "float32")
    return tokenizer


def _fingerprint(real_spec) -> str:
    import transformers

    from modelworker import registry

    where = registry.resolve(real_spec)
    weights = Path(where["path"], where["gguf_file"] or "config.json")
    stat = weights.stat()
    recipe = {
        "build": inspect.getsource(build),
        "constants": [SEED, LOGIT_STD, SHAPE],
        "transformers": transformers.__version__,
        "weights": [str(weights), stat.st_size, int(stat.st_mtime)],
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
