"""The engine of a process: loads each model once, on first use (in the
background, reporting progress), and answers requests by name."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

from django.conf import settings

from .. import registry
from ..errors import ModelError
from . import tuning
from .loading import load_model
from .model import LoadedModel
from .ops import Operations

log = logging.getLogger("modelworker")


class Engine(Operations):
    """One per process. Thread-safe; each model is loaded once, on first use."""

    def __init__(self, config: dict | None = None):
        self.config = dict(config or settings.MODELWORKER)
        self._lock = threading.Lock()
        self._models: dict[str, LoadedModel] = {}
        self._state: dict[str, dict] = {}
        self._ready: dict[str, threading.Event] = {}
        self._latency: dict[str, deque] = {}
        self._requests = 0
        import torch

        threads = int(self.config["TORCH_THREADS"])
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)

    # ---- loading

    def loaded_models(self) -> dict[str, LoadedModel]:
        return self._models

    def status(self, model_id: str) -> dict:
        state = self._state.get(model_id)
        if state:
            return dict(state)
        spec = registry.get(model_id)
        if spec is None:
            return {"status": "unknown", "reason": f"no model called {model_id!r}"}
        try:
            registry.resolve(spec)
        except registry.Unavailable as exc:
            return {"status": "unavailable", "reason": str(exc)}
        return {"status": "not_loaded", "reason": None}

    def start_loading(self, model_id: str) -> threading.Event:
        with self._lock:
            event = self._ready.get(model_id)
            if event is not None:
                return event
            event = self._ready[model_id] = threading.Event()
            spec = registry.get(model_id)
            if spec is None:
                self._ready.pop(model_id)
                raise ModelError("unknown_model", f"Unknown model {model_id!r}.", 400)
            self._state[model_id] = {"status": "loading", "reason": None, "progress": "starting"}
        threading.Thread(target=self._load, args=(spec, event), name=f"load-{model_id}", daemon=True).start()
        return event

    def _load(self, spec: registry.ModelSpec, event: threading.Event):
        started = time.monotonic()

        def progress(message):
            self._state[spec.id]["progress"] = message
            log.info("%s: %s", spec.id, message)

        try:
            progress("loading")
            model, tokenizer = load_model(spec, self.config["DTYPE"], progress, self.config.get("DEVICE", "cpu"))
            loaded = LoadedModel(spec, model, tokenizer, self.config)
            progress("warming up")
            loaded.logits(loaded.encode("Warm-up: the cat sat on the"))
            loaded.logits_cache.clear()
            loaded.kv.clear()
            loaded.token_texts()
            self._models[spec.id] = loaded
            self._state[spec.id] = {
                "status": "ready",
                "reason": None,
                "load_seconds": round(time.monotonic() - started, 2),
            }
            log.info("%s: ready in %.1f s", spec.id, time.monotonic() - started)
        except registry.Unavailable as exc:
            self._state[spec.id] = {"status": "unavailable", "reason": str(exc)}
            log.warning("%s: unavailable: %s", spec.id, exc)
        except Exception as exc:
            self._state[spec.id] = {"status": "unavailable", "reason": f"failed to load: {exc}"}
            log.exception("%s: failed to load", spec.id)
        finally:
            event.set()
            if self._state[spec.id]["status"] != "ready":
                # Let a later request try again (e.g. after the package was installed).
                with self._lock:
                    self._ready.pop(spec.id, None)

    def get(self, model_id: str | None, wait: bool = True) -> LoadedModel:
        model_id = model_id or self.config["DEFAULT_MODEL"]
        loaded = self._models.get(model_id)
        if loaded is not None:
            return loaded
        spec = registry.get(model_id)
        if spec is None:
            raise ModelError("unknown_model", f"Unknown model {model_id!r}.", 400)
        status = self.status(model_id)
        if status["status"] == "unavailable" and model_id not in self._ready:
            raise ModelError("model_unavailable", f"Model {model_id} is unavailable: {status['reason']}", 503)
        event = self.start_loading(model_id)
        if not wait or not event.wait(self.config["LOAD_WAIT_SECONDS"]):
            raise ModelError(
                "model_loading", f"Model {model_id} is still loading; try again in a few seconds.", 503
            )
        loaded = self._models.get(model_id)
        if loaded is None:
            reason = self._state.get(model_id, {}).get("reason") or "failed to load"
            raise ModelError("model_unavailable", f"Model {model_id} is unavailable: {reason}", 503)
        return loaded

    def close(self):
        """Stop every model's batcher (tests, and a worker that shuts down)."""
        for loaded in list(self._models.values()):
            loaded.close()

    # ---- requests

    def handle(self, op: str, payload: dict) -> dict:
        """Answer one request. ``payload`` and the result are plain JSON-able data."""
        method = getattr(self, f"op_{op}", None)
        if method is None:
            raise ModelError("bad_request", f"unknown operation {op!r}", 400)
        started = time.perf_counter()
        tuning.single_threaded_maths()
        try:
            return method(**payload)
        except TypeError as exc:
            raise ModelError("bad_request", f"bad arguments for {op}: {exc}", 400) from exc
        finally:
            self._requests += 1
            self._latency.setdefault(op, deque(maxlen=2000)).append(time.perf_counter() - started)

    def op_stats(self) -> dict:
        def percentile(values, q):
            if not values:
                return None
            ordered = sorted(values)
            return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

        all_latencies = [x for d in self._latency.values() for x in d]
        models = {}
        for model_id, m in self._models.items():
            lookups = m.logits_cache.hits + m.logits_cache.misses
            models[model_id] = {
                "logits_cache_entries": len(m.logits_cache),
                "logits_cache_hit_rate": (m.logits_cache.hits / lookups) if lookups else None,
                "kv_cache_entries": len(m.kv),
                "kv_cache_bytes": m.kv.nbytes,
                "kv_reused_tokens": m.kv.reused_tokens,
                "forward_passes": m.forward_count,
                "mean_batch_rows": (m.batched_rows / m.forward_count) if m.forward_count else None,
                "prefetches": m.batcher.prefetches,
                "prefetch_hits": m.batcher.prefetch_hits,
            }
        return {
            "requests": self._requests,
            "latency_p50_ms": (percentile(all_latencies, 0.5) or 0) * 1000,
            "latency_p95_ms": (percentile(all_latencies, 0.95) or 0) * 1000,
            "models": models,
        }


_engine: Engine | None = None
_engine_lock = threading.Lock()


def get_engine() -> Engine:
    global _engine
    if _engine is None:
        with _engine_lock:
            if _engine is None:
                _engine = Engine()
    return _engine
