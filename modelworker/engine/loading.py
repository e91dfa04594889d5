"""Reading a model's tokenizer and weights from where the registry says they
are. A GGUF file is dequantised once and kept as safetensors."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from django.conf import settings

from .. import registry

log = logging.getLogger("modelworker")


def torch_dtype(name: str):
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def _converted_dir(spec: registry.ModelSpec, where: dict) -> Path:
    gguf = Path(where["path"], where["gguf_file"])
    stat = gguf.stat()
    return Path(settings.MODELWORKER["CACHE_DIR"]) / f"{spec.id}-{stat.st_size}-{int(stat.st_mtime)}"


def load_model(spec: registry.ModelSpec, dtype: str, progress=lambda message: None, device: str = "cpu"):
    """Load tokenizer and weights of ``spec``. A GGUF file is dequantised once
    and kept as safetensors in ``MODELWORKER["CACHE_DIR"]`` so later starts
    take well under a second instead of half a minute."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where = registry.resolve(spec)
    dtype_ = torch_dtype(dtype)
    if where["gguf_file"]:
        converted = _converted_dir(spec, where)
        if (converted / "config.json").is_file():
            progress(f"reading converted weights from {converted}")
            tokenizer = AutoTokenizer.from_pretrained(converted)
            model = AutoModelForCausalLM.from_pretrained(converted, dtype=dtype_)
        else:
            progress(f"converting {where['gguf_file']} (first start only, about 30 s)")
            tokenizer = AutoTokenizer.from_pretrained(where["path"], gguf_file=where["gguf_file"])
            model = AutoModelForCausalLM.from_pretrained(where["path"], gguf_file=where["gguf_file"], dtype=dtype_)
            _save_converted(model, tokenizer, converted, progress)
    else:
        progress(f"reading weights from {where['path']}")
        tokenizer = AutoTokenizer.from_pretrained(where["path"])
        model = AutoModelForCausalLM.from_pretrained(where["path"], dtype=dtype_)
    model.eval()
    if device != "cpu":
        progress(f"moving weights to {device}")
        model.to(device)
    return model, tokenizer


def _save_converted(model, tokenizer, target: Path, progress):
    # The dequantised weights are plain tensors; only the GGUF marker stops
    # save_pretrained. Write to a temporary folder, then rename atomically.
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    try:
        model.hf_quantizer = None
        model.config.__dict__.pop("quantization_config", None)
        if hasattr(model, "is_quantized"):
            model.is_quantized = False
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        tmp.rename(target)
        progress(f"kept converted weights in {target}")
    except OSError as exc:  # another process won the race, or a read-only disk
        log.warning("could not keep converted weights: %s", exc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
