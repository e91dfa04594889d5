"""The KV store's memory budget when the rows of one batch share memory:
counted once, freed only when the last of them goes."""

import torch

from modelworker.engine.caches import KVEntry, KVStore


def batch_rows(n, length=4):
    """``n`` entries that are views of one batch tensor (as a forward hands them back)."""
    keys, values = torch.zeros(n, 1, length, 2), torch.zeros(n, 1, length, 2)
    batch_bytes = keys.nbytes + values.nbytes
    return [KVEntry.of((i,), [(keys[i : i + 1], values[i : i + 1])]) for i in range(n)], batch_bytes


def test_rows_of_one_batch_are_counted_once_until_the_last_goes():
    store = KVStore(10_000)
    rows, batch_bytes = batch_rows(3)
    for i, entry in enumerate(rows):
        store.put(f"s{i}", entry)
    assert store.nbytes == batch_bytes
    store.release("s0")
    store.release("s1")
    assert store.nbytes == batch_bytes  # s2 still holds the batch's memory
    store.release("s2")
    assert store.nbytes == 0


def test_a_session_moving_to_a_new_batch_stops_holding_the_old_one():
    store = KVStore(10_000)
    old, old_bytes = batch_rows(2)
    store.put("a", old[0])
    store.put("b", old[1])
    new, new_bytes = batch_rows(2, length=5)
    store.put("a", new[0])
    store.put("b", new[1])
    assert store.nbytes == new_bytes


def test_the_store_evicts_the_least_recent_until_the_memory_it_holds_fits():
    rows, batch_bytes = batch_rows(2)
    store = KVStore(batch_bytes + 10)
    store.put("a", rows[0])
    store.put("b", rows[1])
    own = KVEntry.of((9,), [(torch.zeros(1, 1, 4, 2), torch.zeros(1, 1, 4, 2))])
    store.put("c", own)  # over budget: a and b go, and with them the batch's memory
    assert len(store) == 1 and store.nbytes == own.nbytes <= store.max_bytes


def test_a_compacted_row_holds_only_its_own_memory():
    rows, batch_bytes = batch_rows(4)
    compact = rows[1].compacted()
    assert compact.nbytes == batch_bytes // 4
    assert torch.equal(compact.layers[0][0], rows[1].layers[0][0])


def entry_of(ids):
    """An entry whose keys at position p hold p (to see which positions a view covers)."""
    positions = torch.arange(len(ids), dtype=torch.float32).reshape(1, 1, -1, 1)
    return KVEntry.of(tuple(ids), [(positions.clone(), positions.clone())])


def test_a_prompt_set_again_reads_on_from_the_old_context_it_starts():
    store = KVStore(10_000)
    store.put("s", entry_of([5, 6, 7, 8, 9, 10]))  # the lesson prompt 5 6 7, then three picks
    found = store.longest_prefix("s", (5, 6, 7, 42))  # the prompt again, then another pick
    assert found.ids == (5, 6, 7)
    assert found.layers[0][0].flatten().tolist() == [0, 1, 2]  # the first three positions
    assert found.storage == store._data["s"].storage  # a view: no copy, and counted once
    store.put("s", found)
    assert store.nbytes == found.nbytes


def test_another_sessions_context_serves_the_start_it_shares_and_the_own_entry_comes_first():
    store = KVStore(10_000)
    store.put("other", entry_of([5, 6, 7, 8]))
    store.put("own", entry_of([5, 6]))
    assert store.longest_prefix("own", (5, 6, 7, 9)).ids == (5, 6, 7)  # the longer shared start wins
    assert store.longest_prefix("own", (5, 6, 1)).ids == (5, 6)
    assert store.longest_prefix("new", (5, 6, 7, 8, 9)).ids == (5, 6, 7, 8)  # whole: no copy
    assert store.longest_prefix("new", (5, 6, 7, 8, 9)) is store._data["other"]
    assert store.longest_prefix("new", (4, 5, 6)) is None


def test_a_few_tokens_shared_by_chance_are_not_worth_a_past_of_their_own():
    store = KVStore(10_000)
    store.put("window", entry_of([3, 1, 4, 1, 5, 9, 2, 6]))  # a stream's window that moved on
    assert store.longest_prefix("other", (3, 1, 7, 7, 7, 7, 7, 7)) is None  # 2 of 8 shared
    assert store.longest_prefix("other", (3, 1, 4, 1, 7, 7, 7, 7)).ids == (3, 1, 4, 1)  # half
