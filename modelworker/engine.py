"""The model engine: loads models once per process and answers requests.

Every request is plain data in, plain data out (see :meth:`Engine.handle`),
so the same engine serves the in-process client and the channel-layer
worker. Each model has a batcher thread, which:

* answers repeated token sequences from a bounded LRU of logits;
* extends a cached KV prefix instead of re-reading the whole context;
* runs every request that arrived meanwhile as one padded forward pass,
  waiting briefly for the streams it just served to come back;
* computes the logits of the last position only (``logits_to_keep=1``).

The forward passes of every model run on one thread of their own, and the
probability maths on the requesting thread with one torch thread (see
:func:`_forward_thread` and :func:`_single_threaded_maths`).
"""

from __future__ import annotations

import inspect
import logging
import os
import queue
import shutil
import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from . import registry, sampling
from .errors import ModelError

log = logging.getLogger("modelworker")

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _torch():
    import torch

    return torch


def _libc_function(name: str):
    """A function of glibc, or None elsewhere (macOS, musl)."""
    try:
        import ctypes

        return getattr(ctypes.CDLL("libc.so.6"), name)
    except (OSError, AttributeError):
        return None


def _heap_trimmer():
    """glibc's ``malloc_trim``, or None elsewhere. Freed tensors (evicted KV
    entries, activations) stay in the process's heap otherwise: the RSS grows
    by tens of MB beyond what the caches hold."""
    return _libc_function("malloc_trim")


_maths_thread = threading.local()


def _single_threaded_maths():
    """Run this thread's torch ops on this thread alone (once per thread).

    The probability maths of a request (softmax over the vocabulary, top-k,
    sampling) runs on the caller's thread, and torch's thread count is per
    thread. Left at 2, each such thread keeps an OpenMP team of its own, and
    the model's forward on the batcher thread then took 50 ms a token
    instead of 28 (SmolLM2-135M, 2 cores: the teams fight over the cores).
    The maths is ~0.1 ms on one thread."""
    if not getattr(_maths_thread, "done", False):
        _set_this_threads_torch_threads(1)
        _maths_thread.done = True


def _set_this_threads_torch_threads(n: int):
    """torch's intra-op thread count for the calling thread. torch gives a new
    thread, on its first torch call, the count last set by any thread: that
    first call goes before ours, or it would undo it."""
    torch = _torch()
    torch.get_num_threads()
    torch.set_num_threads(n)


_forward_executor = None
_forward_executor_lock = threading.Lock()


def _forward_thread():
    """The one thread that runs every model's forward passes in this process.

    Each model has its own batcher thread, but torch's OpenMP/MKL work slows
    down by ~1.8x on a thread while another live thread has done such work
    before (a one-token step of SmolLM2-135M: 28 ms alone, 50 ms beside an
    idle second model's batcher, on the 2-core VM). Forwards of two models
    would share the cores anyway, so they take turns on this thread."""
    global _forward_executor
    if _forward_executor is None:
        with _forward_executor_lock:
            if _forward_executor is None:
                _forward_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-forward")
    return _forward_executor


MALLOC_ARENAS = 2


def _limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """At most ``arenas`` glibc malloc arenas in this process (glibc's default
    is 8 per core). Under ASGI every request runs on a fresh thread, which gets
    an arena of its own; the probability maths done there left ~40 MB resident
    in those arenas after a class of 30 (malloc_trim cannot give it back). An
    explicit MALLOC_ARENA_MAX in the environment wins."""
    mallopt = _libc_function("mallopt")
    if mallopt is None or "MALLOC_ARENA_MAX" in os.environ:
        return False
    M_ARENA_MAX = -8
    return bool(mallopt(M_ARENA_MAX, arenas))


# --------------------------------------------------------------------------- caches


class LogitsCache:
    """LRU of last-position logits keyed by the exact token sequence."""

    def __init__(self, max_entries: int):
        self.max_entries = max_entries
        self._data: OrderedDict[tuple, object] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key):
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key, value):
        if self.max_entries <= 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def __len__(self):
        return len(self._data)

    def clear(self):
        with self._lock:
            self._data.clear()


@dataclass
class KVEntry:
    ids: tuple
    layers: list  # [(keys [1, heads, len, dim], values [...]), ...] one pair per layer
    nbytes: int


class KVStore:
    """KV caches of live sequences (a wheel session, a playground stream),
    bounded by memory. Entries are never mutated: a forward that extends one
    builds new tensors, so a prefix can safely be shared between sessions."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._data: OrderedDict[str, KVEntry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.reused_tokens = 0

    def longest_prefix(self, key: str | None, ids: tuple) -> KVEntry | None:
        """The entry whose ids are the longest prefix of ``ids`` (the caller's
        own entry first). An entry equal to ``ids`` counts: the caller crops it."""
        with self._lock:
            own = self._data.get(key) if key else None
            if own is not None and len(own.ids) <= len(ids) and ids[: len(own.ids)] == own.ids:
                self._data.move_to_end(key)
                return own
            best = None
            for entry in self._data.values():
                n = len(entry.ids)
                if n <= len(ids) and (best is None or n > len(best.ids)) and ids[:n] == entry.ids:
                    best = entry
            return best

    def put(self, key: str, entry: KVEntry):
        if entry.nbytes > self.max_bytes:
            return
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._data[key] = entry
            self._bytes += entry.nbytes
            while self._bytes > self.max_bytes and self._data:
                _, evicted = self._data.popitem(last=False)
                self._bytes -= evicted.nbytes

    def release(self, key: str) -> bool:
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            return old is not None

    @property
    def nbytes(self):
        return self._bytes

    def __len__(self):
        return len(self._data)

    def clear(self):
        with self._lock:
            self._data.clear()
            self._bytes = 0


# --------------------------------------------------------------------------- loading


def _dtype(name: str):
    torch = _torch()
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
    torch_dtype = _dtype(dtype)
    if where["gguf_file"]:
        converted = _converted_dir(spec, where)
        if (converted / "config.json").is_file():
            progress(f"reading converted weights from {converted}")
            tokenizer = AutoTokenizer.from_pretrained(converted)
            model = AutoModelForCausalLM.from_pretrained(converted, dtype=torch_dtype)
        else:
            progress(f"converting {where['gguf_file']} (first start only, about 30 s)")
            tokenizer = AutoTokenizer.from_pretrained(where["path"], gguf_file=where["gguf_file"])
            model = AutoModelForCausalLM.from_pretrained(where["path"], gguf_file=where["gguf_file"], dtype=torch_dtype)
            _save_converted(model, tokenizer, converted, progress)
    else:
        progress(f"reading weights from {where['path']}")
        tokenizer = AutoTokenizer.from_pretrained(where["path"])
        model = AutoModelForCausalLM.from_pretrained(where["path"], dtype=torch_dtype)
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


# --------------------------------------------------------------------------- jobs


@dataclass
class _Job:
    ids: tuple
    cache_key: str | None
    # A step of a stream (playground, continue): its caller comes straight
    # back with the next step once it has this one's logits.
    follow_up: bool = False
    future: Future = field(default_factory=Future)


class LoadedModel:
    """One model, its tokenizer, its caches and the thread that runs its forwards."""

    def __init__(self, spec: registry.ModelSpec, model, tokenizer, config: dict):
        self.spec = spec
        self.model = model
        self.tokenizer = tokenizer
        self.vocab_size = int(model.config.vocab_size)
        self.device = next(model.parameters()).device
        self.max_context = int(
            getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", 1024)
        )
        eos = tokenizer.eos_token_id
        self.eos_ids = {eos} if eos is not None else set()
        self.batching = config["BATCHING"]
        self.caching = config["CACHING"]
        self.max_batch = max(1, config["MAX_BATCH"]) if self.batching else 1
        self.torch_threads = max(1, int(config["TORCH_THREADS"]))
        # transformers 5.24 renamed the forward's past_key_values to cache (the
        # old name warns, and goes in 5.40); older releases know only the old one.
        self._cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        # How long after a forward the batcher may wait for the streams of that
        # forward to come back with their next step (see _collect).
        self.linger = max(0, config.get("BATCH_LINGER_MS", 0)) / 1000 if self.batching else 0
        self._expect_back = 0
        self._last_done = 0.0
        self.logits_cache = LogitsCache(config["LOGITS_CACHE_ENTRIES"] if self.caching else 0)
        self.kv = KVStore(config["KV_CACHE_MB"] * 1024 * 1024 if self.caching else 0)
        self._tokenizer_lock = threading.Lock()
        self._token_texts: list[str] | None = None
        self._text_to_id: dict[str, int] | None = None
        self._queue: queue.Queue[_Job] = queue.Queue()
        self.forward_count = 0
        self.batched_rows = 0
        self._thread = threading.Thread(target=self._run, name=f"model-{spec.id}", daemon=True)
        self._thread.start()

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

    # ---- logits through the batcher

    def logits(self, ids, cache_key: str | None = None, timeout: float | None = None, follow_up: bool = False):
        ids = tuple(int(i) for i in ids)
        if not ids:
            raise ModelError("empty_context", "There is no text to continue.", 400)
        cached = self.logits_cache.get(ids)
        if cached is not None:
            if cache_key and self.caching:
                self._remember_prefix(cache_key, ids)
            return cached
        job = _Job(ids, cache_key, follow_up)
        self._queue.put(job)
        try:
            return job.future.result(timeout=timeout)
        except FutureTimeout:
            job.future.cancel()  # the batcher skips it if it has not started it
            raise ModelError("worker_timeout", "The model is busy; try again in a few seconds.", 503) from None

    def _remember_prefix(self, cache_key, ids):
        # A logits hit skips the forward; point this key at the shared KV so its
        # next one-token step still extends a cache instead of re-reading all.
        entry = self.kv.longest_prefix(cache_key, ids)
        if entry is not None and entry.ids == ids:
            self.kv.put(cache_key, entry)

    def release(self, cache_key: str) -> bool:
        return self.kv.release(cache_key)

    # Freed memory goes back to the OS once the batcher has been idle this long
    # (or at most this often under steady load): a few ms of malloc_trim.
    TRIM_IDLE_SECONDS = 0.5
    TRIM_EVERY_SECONDS = 5.0

    def _run(self):
        trim = _heap_trimmer()
        dirty, last_trim = False, time.monotonic()
        while True:
            try:
                first = self._queue.get(timeout=self.TRIM_IDLE_SECONDS if dirty and trim else None)
            except queue.Empty:
                first = None
            if trim and dirty and (first is None or time.monotonic() - last_trim > self.TRIM_EVERY_SECONDS):
                trim(0)
                dirty, last_trim = False, time.monotonic()
            if first is None:
                continue
            dirty = True
            jobs = self._collect(first)
            try:
                _forward_thread().submit(self._process, jobs).result()
            except Exception as exc:  # never let the batcher thread die
                log.exception("forward pass failed")
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(ModelError("generation_failed", f"Generation failed: {exc}", 500))
            self._expect_back = sum(job.follow_up for job in jobs)
            self._last_done = time.monotonic()

    def _collect(self, first: _Job) -> list[_Job]:
        """The jobs for the next forward: ``first`` and whatever is queued.

        Streams convoy: when a batch of N streams finishes, the first to come
        back would otherwise start a forward alone while the other N-1 queue
        behind it, and the batches stay small. So right after a forward that
        held stream steps, the batcher waits (until at most ``linger`` after
        that forward ended) for as many stream steps as it just served. A job
        arriving later than that, or when no stream was served, starts at once."""
        jobs = [first]
        deadline = self._last_done + self.linger
        while len(jobs) < self.max_batch:
            try:
                jobs.append(self._queue.get_nowait())
                continue
            except queue.Empty:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0 or sum(job.follow_up for job in jobs) >= self._expect_back:
                break
            try:
                jobs.append(self._queue.get(timeout=remaining))
            except queue.Empty:
                break
        return jobs

    def _process(self, jobs: list[_Job]):
        torch = _torch()
        if torch.get_num_threads() != self.torch_threads:
            _set_this_threads_torch_threads(self.torch_threads)
        # A caller that timed out has cancelled its job: no forward for it.
        jobs = [job for job in jobs if job.future.set_running_or_notify_cancel()]
        # Identical sequences (a class on the same lesson prompt) share one row.
        unique: dict[tuple, list[_Job]] = {}
        for job in jobs:
            cached = self.logits_cache.get(job.ids) if self.caching else None
            if cached is not None:
                job.future.set_result(cached)
                continue
            unique.setdefault(job.ids, []).append(job)
        if not unique:
            return
        rows = []
        for ids, same in unique.items():
            prefix = None
            if self.caching:
                entry = self.kv.longest_prefix(same[0].cache_key, ids)
                if entry is not None:
                    prefix = entry
            rows.append((ids, same, prefix))

        # Rows that only add a few tokens batch well together; long prefills go alone
        # unless they are of similar length.
        rows.sort(key=lambda r: len(r[0]) - (len(r[2].ids) if r[2] else 0))
        groups, current = [], []
        for row in rows:
            if current:
                new_lens = [len(r[0]) - (len(r[2].ids) if r[2] else 0) for r in current + [row]]
                real = sum(new_lens)
                padded = max(new_lens) * len(new_lens)
                if padded > 1.5 * real + 8:
                    groups.append(current)
                    current = []
            current.append(row)
        groups.append(current)

        with torch.inference_mode():
            for group in groups:
                logits_rows, layers_rows = self._forward(group)
                for (ids, same, _), logits, layers in zip(group, logits_rows, layers_rows):
                    if self.caching:
                        self.logits_cache.put(ids, logits)
                        nbytes = sum(k.numel() * k.element_size() * 2 for k, _ in layers)
                        entry = KVEntry(ids, layers, nbytes)
                        keys = {job.cache_key for job in same if job.cache_key} or {f"seq:{hash(ids)}"}
                        for key in keys:
                            self.kv.put(key, entry)
                    for job in same:
                        job.future.set_result(logits)

    def _forward(self, group):
        """One forward pass for a group of rows ``(ids, jobs, prefix_entry)``.

        Returns the last-position logits of each row and each row's new KV
        layers. Rows with different past lengths are left-padded in both the
        past and the new tokens; the attention mask hides the padding and the
        position ids stay each row's true positions."""
        torch = _torch()

        plan = []
        for ids, _, entry in group:
            if entry is None:
                past_layers, past_len = None, 0
            else:
                past_len = len(entry.ids)
                if past_len == len(ids):  # logits were evicted but the KV survived: redo the last token
                    past_len -= 1
                past_layers = [(k[:, :, :past_len], v[:, :, :past_len]) for k, v in entry.layers]
                if past_len == 0:
                    past_layers = None
            plan.append((list(ids[past_len:]), past_layers, past_len))
            if past_layers is not None:
                self.kv.reused_tokens += past_len
        self.forward_count += 1
        self.batched_rows += len(plan)

        if len(plan) == 1:
            new_ids, past_layers, _ = plan[0]
            past = _dynamic_cache(past_layers) if past_layers else None
            out = self.model(
                input_ids=torch.tensor([new_ids], device=self.device),
                use_cache=True,
                logits_to_keep=1,
                **{self._cache_arg: past},
            )
            layers = [(layer.keys, layer.values) for layer in out.past_key_values.layers]
            # Logits come back to the CPU: the maths and seeded sampling run there.
            return [out.logits[0, -1].float().cpu()], [layers]

        n = len(plan)
        P = max(p[2] for p in plan)
        M = max(len(p[0]) for p in plan)
        pad_id = 0
        input_ids = torch.full((n, M), pad_id, dtype=torch.long, device=self.device)
        position_ids = torch.zeros((n, M), dtype=torch.long, device=self.device)
        attention = torch.zeros((n, P + M), dtype=torch.long, device=self.device)
        for i, (new_ids, _, past_len) in enumerate(plan):
            m = len(new_ids)
            input_ids[i, M - m :] = torch.tensor(new_ids)
            position_ids[i, M - m :] = torch.arange(past_len, past_len + m)
            attention[i, P - past_len : P] = 1
            attention[i, P + M - m :] = 1
        past = None
        if P > 0:
            template = next(p[1] for p in plan if p[1] is not None)
            data = []
            for layer_index, (k0, v0) in enumerate(template):
                keys = k0.new_zeros((n, k0.shape[1], P, k0.shape[3]))
                values = v0.new_zeros((n, v0.shape[1], P, v0.shape[3]))
                for i, (_, past_layers, past_len) in enumerate(plan):
                    if past_layers is not None and past_len:
                        keys[i, :, P - past_len :] = past_layers[layer_index][0][0]
                        values[i, :, P - past_len :] = past_layers[layer_index][1][0]
                data.append((keys, values))
            past = _dynamic_cache(data)
        out = self.model(
            input_ids=input_ids,
            attention_mask=attention,
            position_ids=position_ids,
            **{self._cache_arg: past},
            use_cache=True,
            logits_to_keep=1,
        )
        logits = out.logits[:, -1].float().cpu()
        layers_rows = []
        for i, (new_ids, _, past_len) in enumerate(plan):
            # Row i's own positions: its past [P - past_len, P) and its new
            # tokens [P + M - m, P + M); one slice when nothing is padded between.
            m = len(new_ids)
            if m == M or past_len == 0:
                spans = [slice(P - past_len, P + M)] if m == M else [slice(P + M - m, P + M)]
            else:
                spans = [slice(P - past_len, P), slice(P + M - m, P + M)]
            layers_rows.append(
                [(_row(layer.keys, i, spans), _row(layer.values, i, spans)) for layer in out.past_key_values.layers]
            )
        return [logits[i].clone() for i in range(n)], layers_rows


def _dynamic_cache(layers):
    """A DynamicCache that holds these ``(keys, values)`` as they are.

    ``DynamicCache(ddp_cache_data=...)`` concatenates each layer onto an empty
    tensor: a copy of the whole past on every step, on top of the copy the
    forward makes when it appends the new tokens."""
    from transformers.cache_utils import DynamicCache

    cache = DynamicCache(ddp_cache_data=[(None, None)] * len(layers))
    for layer, (keys, values) in zip(cache.layers, layers):
        # Let the layer initialise itself (dtype, device) from an empty slice,
        # then hold the tensors themselves.
        layer.update(keys[:, :, :0], values[:, :, :0])
        layer.keys, layer.values = keys, values
    return cache


def _row(tensor, i, spans):
    """Row ``i`` of a batched KV tensor (batch, heads, positions, dim), only
    the positions in ``spans``, as a tensor of its own (batch 1)."""
    torch = _torch()
    parts = [tensor[i : i + 1, :, span] for span in spans]
    if len(parts) > 1:
        return torch.cat(parts, dim=2)
    # A copy even when the slice is already contiguous: a view would keep the
    # whole batch's tensor alive in the KV store.
    return parts[0].clone(memory_format=torch.contiguous_format)


# --------------------------------------------------------------------------- engine


class Engine:
    """One per process. Thread-safe; each model is loaded once, on first use."""

    def __init__(self, config: dict | None = None):
        self.config = dict(config or settings.MODELWORKER)
        self._lock = threading.Lock()
        self._models: dict[str, LoadedModel] = {}
        self._state: dict[str, dict] = {}
        self._ready: dict[str, threading.Event] = {}
        self._latency: dict[str, deque] = {}
        self._requests = 0
        _limit_malloc_arenas()
        torch = _torch()
        threads = int(self.config["TORCH_THREADS"])
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)

    # ---- loading

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

    # ---- requests

    def handle(self, op: str, payload: dict) -> dict:
        """Answer one request. ``payload`` and the result are plain JSON-able data."""
        method = getattr(self, f"op_{op}", None)
        if method is None:
            raise ModelError("bad_request", f"unknown operation {op!r}", 400)
        started = time.perf_counter()
        _single_threaded_maths()
        try:
            return method(**payload)
        except TypeError as exc:
            raise ModelError("bad_request", f"bad arguments for {op}: {exc}", 400) from exc
        finally:
            self._requests += 1
            self._latency.setdefault(op, deque(maxlen=2000)).append(time.perf_counter() - started)

    def op_models(self) -> dict:
        models = []
        for spec in registry.all_models():
            entry = spec.public()
            entry.update(self.status(spec.id))
            loaded = self._models.get(spec.id)
            if loaded is not None:
                entry["vocabulary_size"] = loaded.vocab_size
                entry["max_context"] = loaded.max_context
            models.append(entry)
        return {"models": models}

    def op_load(self, model: str | None = None) -> dict:
        """Make sure ``model`` is loaded (waiting while it loads); its status."""
        loaded = self.get(model)
        return {"model": loaded.spec.id, **self.status(loaded.spec.id)}

    def op_tokenize(self, model: str, text: str) -> dict:
        m = self.get(model)
        bad = m.unrepresentable(text)
        if bad:
            raise ModelError("unknown_characters", f"Unknown characters: {bad!r}", 400, characters=bad)
        ids = m.encode(text)
        return {"ids": ids, "tokens": [m.token_text(i) for i in ids]}

    def op_decode(self, model: str, ids: list) -> dict:
        m = self.get(model)
        self._check_ids(m, ids)
        return {"text": m.decode(ids), "tokens": [m.token_text(i) for i in ids]}

    def op_lookup(self, model: str, text: str) -> dict:
        m = self.get(model)
        return {"token_id": m.lookup(text)}

    def op_release(self, cache_key: str, model: str | None = None) -> dict:
        released = False
        for loaded in list(self._models.values()):
            if model in (None, loaded.spec.id):
                released = loaded.release(cache_key) or released
        return {"released": released}

    def _check_ids(self, m: LoadedModel, ids):
        for token_id in ids:
            if not isinstance(token_id, int) or isinstance(token_id, bool) or not 0 <= token_id < m.vocab_size:
                raise ModelError(
                    "invalid_token", f"Invalid token_id {token_id!r}: must be an integer in [0, {m.vocab_size}).", 400
                )

    def _probs(self, m: LoadedModel, ids, cache_key, temperature=1.0, top_p=1.0, top_k=0, follow_up=False):
        self._check_ids(m, ids)
        logits = m.logits(ids, cache_key, timeout=self.config["TIMEOUT_SECONDS"], follow_up=follow_up)
        return sampling.distribution(logits, temperature, top_p, top_k)

    def op_distribution(
        self, model, ids, threshold=0.01, temperature=1.0, top_p=1.0, other_top_k=10, cache_key=None
    ) -> dict:
        m = self.get(model)
        probs = self._probs(m, ids, cache_key, temperature, top_p)
        split = sampling.threshold_split(probs, threshold, other_top_k)

        def describe(token_ids, token_probs):
            return [
                {
                    "token_id": t,
                    "token_text": m.token_text(t),
                    "probability": p,
                    "log_probability": sampling.log_probability(p),
                }
                for t, p in zip(token_ids, token_probs)
            ]

        return {
            "above_threshold_tokens": describe(split.above_ids, split.above_probs),
            "other_category": {
                "total_probability": split.other_total,
                "token_count": split.other_count,
                "sample_tokens": describe(split.other_sample_ids, split.other_sample_probs),
            },
            "total_above_threshold_probability": split.above_total,
            "excluded_by_top_p": split.excluded_count,
            "vocabulary_size": split.vocabulary_size,
        }

    def op_choose(
        self, model, ids, mode, token_id=None, threshold=0.01, temperature=1.0, top_p=1.0, seed=None, cache_key=None
    ) -> dict:
        """Pick the next token: ``token`` (the one given), ``other`` (draw within
        Other), ``sample`` (a spin of the whole wheel) or ``greedy``."""
        m = self.get(model)
        probs = self._probs(m, ids, cache_key, temperature, top_p)
        generator = sampling.make_generator(seed)
        if mode == "token":
            self._check_ids(m, [token_id])
            chosen = token_id
        elif mode == "other":
            try:
                chosen = sampling.sample_other(probs, threshold, generator)
            except ValueError as exc:
                raise ModelError("other_empty", str(exc), 400) from exc
        elif mode == "sample":
            chosen = sampling.sample(probs, generator)
        elif mode == "greedy":
            chosen = int(probs.argmax())
        else:
            raise ModelError("bad_request", f"unknown mode {mode!r}", 400)
        p = float(probs[chosen])
        result = {
            "token_id": chosen,
            "token_text": m.token_text(chosen),
            "probability": p,
            "log_probability": sampling.log_probability(p),
            "category": sampling.category(p, threshold),
        }
        if result["category"] == "other":
            below = probs.masked_fill(probs >= threshold, 0)
            result["other_category_info"] = {
                "total_probability": float(below.sum()),
                "token_count": int((below > 0).sum()),
                "selected_token_rank": sampling.rank_within_other(probs, threshold, chosen),
            }
        return result

    def op_continue(
        self, model, ids, n, mode="greedy", temperature=1.0, top_p=1.0, top_k=0, seed=None, cache_key=None
    ) -> dict:
        """Continue ``ids`` by up to ``n`` tokens without changing any session."""
        m = self.get(model)
        generator = sampling.make_generator(seed)
        ids = list(ids)
        tokens = []
        for _ in range(int(n)):
            probs = self._probs(m, ids, cache_key, temperature, top_p, top_k, follow_up=True)
            chosen = int(probs.argmax()) if mode == "greedy" else sampling.sample(probs, generator)
            p = float(probs[chosen])
            tokens.append({"token_id": chosen, "token_text": m.token_text(chosen), "probability": p})
            ids.append(chosen)
            if chosen in m.eos_ids:
                break
        if cache_key:
            m.release(cache_key)
        return {"tokens": tokens, "text": m.decode([t["token_id"] for t in tokens])}

    def op_next_token(
        self,
        model,
        ids,
        temperature=1.0,
        top_k=0,
        top_p=1.0,
        context_window=None,
        chosen_token_id=None,
        greedy=False,
        seed=None,
        top_n=10,
        cache_key=None,
    ) -> dict:
        """One step of a playground stream: the model sees only the last
        ``context_window`` tokens of ``ids``; the next token is sampled (or
        greedy, or the one chosen by hand)."""
        m = self.get(model)
        window = min(int(context_window or m.max_context), m.max_context)
        start = max(0, len(ids) - window)
        visible = list(ids[start:])
        probs = self._probs(m, visible, cache_key, temperature, top_p, top_k, follow_up=True)
        if chosen_token_id is not None:
            self._check_ids(m, [chosen_token_id])
            chosen = chosen_token_id
        elif greedy:
            chosen = int(probs.argmax())
        else:
            chosen = sampling.sample(probs, sampling.make_generator(seed))
        top_probs, top_ids = probs.topk(min(int(top_n), probs.numel()))
        p = float(probs[chosen])
        return {
            "token_id": chosen,
            "token_text": m.token_text(chosen),
            "probability": p,
            "top": [
                {"token_id": int(t), "token": m.token_text(int(t)), "prob": float(q)}
                for t, q in zip(top_ids.tolist(), top_probs.tolist())
            ],
            "context_start": start,
            # What the model saw, for the playground's "in view" display
            # (decoded here because web code has no tokenizer).
            "context_tokens": len(visible),
            "context_text": m.decode(visible),
            "eos": chosen in m.eos_ids,
        }

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
