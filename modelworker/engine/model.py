"""One loaded model: its weights, its tokenizer (thread-safe helpers) and its
batcher, through which every forward pass goes."""

from __future__ import annotations

import threading

from .. import registry
from ..errors import ModelError
from .batcher import Batcher
from .padded_forward import PaddedForward
from .row_padding import pad_small_batches


class LoadedModel:
    def __init__(self, spec: registry.ModelSpec, model, tokenizer, config: dict, forward=None):
        self.spec = spec
        self.model = model
        self.tokenizer = tokenizer
        self.vocab_size = int(model.config.vocab_size)
        self.max_context = int(
            getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", 1024)
        )
        eos = tokenizer.eos_token_id
        self.eos_ids = {eos} if eos is not None else set()
        self._tokenizer_lock = threading.Lock()
        self._token_texts: list[str] | None = None
        self._text_to_id: dict[str, int] | None = None
        if config.get("PAD_ROWS", True):
            pad_small_batches(model)  # 8-15 rows cost what 16 do, not up to 1.4x more
        self.batcher = Batcher(forward or PaddedForward(model), config, name=spec.id)

    # ---- forwards, through the batcher

    def ask(self, ids, cache_key=None, question=None, timeout: float | None = None, follow_up: bool = False):
        """The answer to a :class:`~.batch_maths.Question` about the token after ``ids``."""
        return self.batcher.ask(ids, cache_key, question, timeout=timeout, follow_up=follow_up)

    def logits(self, ids, cache_key: str | None = None, timeout: float | None = None, follow_up: bool = False):
        return self.batcher.logits(ids, cache_key, timeout=timeout, follow_up=follow_up)

    def release(self, cache_key: str) -> bool:
        return self.batcher.release(cache_key)

    def close(self):
        self.batcher.close()

    @property
    def logits_cache(self):
        return self.batcher.logits_cache

    @property
    def kv(self):
        return self.batcher.kv

    @property
    def forward_count(self) -> int:
        return self.batcher.forward_count

    @property
    def batched_rows(self) -> int:
        return self.batcher.batched_rows

    # ---- tokenizer helpers (thread-safe)

    def encode(self, text: str) -> list[int]:
        with self._tokenizer_lock:
            return self.tokenizer.encode(text, add_special_tokens=False)

    def decode(self, ids) -> str:
        with self._tokenizer_lock:
            return self.tokenizer.decode(list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def token_texts(self) -> list[str]:
        if self._token_texts is None:
            with self._tokenizer_lock:
                texts = self.tokenizer.batch_decode(
                    [[i] for i in range(self.vocab_size)], clean_up_tokenization_spaces=False
                )
            self._token_texts = texts
        return self._token_texts

    def token_text(self, token_id: int) -> str:
        return self.token_texts()[token_id]

    def lookup(self, text: str) -> int | None:
        """The id of the vocabulary token whose text is exactly ``text``."""
        if self._text_to_id is None:
            mapping: dict[str, int] = {}
            for i, t in enumerate(self.token_texts()):
                mapping.setdefault(t, i)
            self._text_to_id = mapping
        ids = self.encode(text)
        if len(ids) == 1 and self.token_text(ids[0]) == text:
            return ids[0]
        return self._text_to_id.get(text)

    def unrepresentable(self, text: str) -> list[str]:
        """Characters the tokenizer cannot carry through encode/decode unchanged."""
        try:
            if self.decode(self.encode(text)) == text:
                return []
        except Exception:  # lone surrogates and the like make the tokenizer raise
            pass
        bad = []
        for ch in dict.fromkeys(text):
            try:
                ok = self.decode(self.encode(ch)) == ch
            except Exception:
                ok = False
            if not ok:
                bad.append(ch)
        return bad

    def check_ids(self, ids):
        for token_id in ids:
            if not isinstance(token_id, int) or isinstance(token_id, bool) or not 0 <= token_id < self.vocab_size:
                raise ModelError(
                    "invalid_token", f"Invalid token_id {token_id!r}: must be an integer in [0, {self.vocab_size}).", 400
                )
