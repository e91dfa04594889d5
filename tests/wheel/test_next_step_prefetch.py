"""After an append, the model starts on the next wheel at once: the
student's next ``next-token-probs`` needs no forward of its own, and shows
exactly what a fresh computation would."""

import time

import pytest

from .test_wheel_api import post, probs

pytestmark = pytest.mark.django_db


def wait_for_forwards(smol, count, seconds=20):
    deadline = time.monotonic() + seconds
    while smol.forward_count < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return smol.forward_count


def test_the_next_wheel_is_computed_while_the_student_reads_the_last(api, smol):
    sid = post(api, "/api/sessions", {}).json()["session_id"]
    assert post(api, f"/api/sessions/{sid}/set-prompt", {"prompt": "A quiet morning in the"}).status_code == 200
    first = probs(api, sid)
    token = first["above_threshold_tokens"][0]["token_id"]
    before = smol.forward_count

    appended = post(api, f"/api/sessions/{sid}/append-token", {"token_id": token})
    assert appended.status_code == 200
    assert "text" not in appended.json()  # the engine's whole-text field stays inside
    assert wait_for_forwards(smol, before + 1) == before + 1  # the prefetch, with nobody asking yet
    hits = smol.batcher.prefetch_hits

    shown = probs(api, sid)
    assert smol.forward_count == before + 1 and smol.batcher.prefetch_hits == hits + 1

    # The same wheel as one computed from scratch.
    smol.logits_cache.clear()
    smol.kv.release(f"wheel:{sid}")
    fresh = probs(api, sid)
    assert smol.forward_count == before + 2
    assert [t["token_id"] for t in shown["above_threshold_tokens"]] == [t["token_id"] for t in fresh["above_threshold_tokens"]]
    for a, b in zip(shown["above_threshold_tokens"], fresh["above_threshold_tokens"]):
        assert a["probability"] == pytest.approx(b["probability"], abs=1e-6)

