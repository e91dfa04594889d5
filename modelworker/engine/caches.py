"""The engine's two caches: last-position logits by token sequence (LRU by
count) and the KV caches of live sequences (LRU by bytes)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass


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

    def peek(self, key):
        """The value, without counting a hit or a miss or refreshing it."""
        with self._lock:
            return self._data.get(key)

    def pop(self, key):
        with self._lock:
            return self._data.pop(key, None)

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
    """The keys and values of a token sequence. The tensors may be views of a
    forward's batch tensors (the rows of one batch kept together, not copied
    out): ``storage`` names that memory and ``nbytes`` is all of it, which
    the store counts once however many entries share it."""

    ids: tuple
    layers: list  # [(keys [1, heads, len, dim], values [...]), ...] one pair per layer
    nbytes: int
    storage: int = 0

    @classmethod
    def of(cls, ids: tuple, layers: list) -> "KVEntry":
        nbytes = sum(k.untyped_storage().nbytes() + v.untyped_storage().nbytes() for k, v in layers)
        return cls(ids, layers, nbytes, layers[0][0].untyped_storage().data_ptr())

    def compacted(self) -> "KVEntry":
        """The same keys and values in memory of their own."""
        return KVEntry.of(self.ids, [(k.clone(), v.clone()) for k, v in self.layers])

    def prefix(self, n: int) -> list:
        """The layers of the first ``n`` positions (views, no copy)."""
        return [(k[:, :, :n], v[:, :, :n]) for k, v in self.layers]

    def head(self, n: int) -> "KVEntry":
        """The entry of the first ``n`` tokens, in the same memory."""
        return KVEntry(self.ids[:n], self.prefix(n), self.nbytes, self.storage)


def _shared_start(a: tuple, b: tuple) -> int:
    """How many tokens ``a`` and ``b`` share from their start (slice
    comparisons in C: a binary search, not a loop over tokens)."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n  # a[:lo] == b[:lo], a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid
    return lo


class KVStore:
    """KV caches of live sequences (a wheel session, a playground stream),
    bounded by memory. Entries are never mutated: a forward that extends one
    builds new tensors, so a prefix can safely be shared between sessions.
    Memory that several entries share is counted once, while any of them is here."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._data: OrderedDict[str, KVEntry] = OrderedDict()
        self._shared: dict[int, int] = {}  # storage -> how many keys hold it
        self._bytes = 0
        self._lock = threading.Lock()
        self.reused_tokens = 0

    def longest_prefix(self, key: str | None, ids: tuple) -> KVEntry | None:
        """The longest start of ``ids`` whose keys and values are here (the
        caller's own entry first), as an entry of its own sharing their memory;
        None when no entry starts as ``ids`` does. An entry longer than that
        start counts when the start is at least half of ``ids``: a session
        whose prompt was set again reads on from the new prompt's tokens in
        its old context instead of re-reading them.
        An entry equal to ``ids`` counts too: the caller crops it."""
        with self._lock:
            own = self._data.get(key) if key else None
            best, n_best = None, 0
            if own is not None:
                self._data.move_to_end(key)
                best, n_best = own, _shared_start(own.ids, ids)
            if n_best < len(ids) - 1:  # the own entry leaves more than the last token to read
                for entry in self._data.values():
                    n = _shared_start(entry.ids, ids)
                    if n > n_best:
                        best, n_best = entry, n
            if not n_best:
                return None
            if n_best == len(best.ids):
                return best
            # Part of a longer entry: only when it is most of ``ids``. A few
            # shared tokens (a playground window that moved on, whose start now
            # matches another text's by chance) would give that row a past of
            # its own length and the whole batch an attention mask, for
            # nearly nothing saved.
            return best.head(n_best) if 2 * n_best >= len(ids) else None

    def put(self, key: str, entry: KVEntry):
        if entry.nbytes > self.max_bytes:
            return
        with self._lock:
            self._drop(self._data.pop(key, None))
            self._data[key] = entry
            held = self._shared.get(entry.storage, 0)
            self._shared[entry.storage] = held + 1
            if not held:
                self._bytes += entry.nbytes
            while self._bytes > self.max_bytes and self._data:
                _, evicted = self._data.popitem(last=False)
                self._drop(evicted)

    def _drop(self, entry: KVEntry | None):
        if entry is None:
            return
        held = self._shared.pop(entry.storage) - 1
        if held:
            self._shared[entry.storage] = held
        else:
            self._bytes -= entry.nbytes

    def release(self, key: str) -> bool:
        with self._lock:
            old = self._data.pop(key, None)
            self._drop(old)
            return old is not None

    @property
    def nbytes(self):
        return self._bytes

    def __len__(self):
        return len(self._data)

    def clear(self):
        with self._lock:
            self._data.clear()
            self._shared.clear()
            self._bytes = 0
