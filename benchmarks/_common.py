"""What the benchmark scripts share: they run from a checkout (importing this
module puts the project and this folder on the path and names the settings),
and they compare the server with the same weights loaded in their own process.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tokenwheel_site.settings")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def torch_threads() -> int:
    """The servers' TORCH_THREADS: the environment's, else the settings' default."""
    return int(os.environ.get("TORCH_THREADS", max(1, min(4, os.cpu_count() or 1))))


class LocalModel:
    """The very same weights, loaded in this process the way the engine loads
    them (``model_id`` None: the default model)."""

    def __init__(self, threads: int, model_id: str | None = None):
        import django

        django.setup()
        import torch
        from django.conf import settings

        from modelworker import registry
        from modelworker.engine import load_model

        self.torch = torch
        torch.set_num_threads(threads)
        self.model_id = model_id or settings.MODELWORKER["DEFAULT_MODEL"]
        self.dtype = settings.MODELWORKER["DTYPE"]
        self.model, self.tokenizer = load_model(registry.get(self.model_id), self.dtype)
        self.threads = torch.get_num_threads()

    def encode(self, text):
        return self.tokenizer.encode(text, add_special_tokens=False)
