"""POST /api/generate-next-token: the seed's endpoint and its error table."""

import json
import uuid

import pytest
from asgiref.sync import async_to_sync

from playground import services
from playground.models import PlaygroundRun
from wheel.models import WheelSession

URL = "/api/generate-next-token"


@pytest.fixture
def session(db):
    return WheelSession.objects.create(model_name="smollm2-135m")


def post(api, body):
    return api.post(URL, body, format="json")


def test_it_answers_with_the_next_token_and_the_top_ten(api, session):
    response = post(api, {"session_id": str(session.pk), "context": "Hello wor", "temperature": 1.0})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert set(body) >= {"next_token", "probabilities", "context_used"}
    assert body["context_used"] == "Hello wor"
    probs = body["probabilities"]
    assert len(probs) == 10 and all(set(p) == {"token", "prob", "token_id"} for p in probs)
    assert [p["prob"] for p in probs] == sorted((p["prob"] for p in probs), reverse=True)
    assert 0 < sum(p["prob"] for p in probs) <= 1 + 1e-6
    assert isinstance(body["next_token"], str) and body["model"] == "smollm2-135m"


def test_greedy_takes_the_top_token_and_temperature_sharpens(api, session):
    sid = str(session.pk)
    greedy = post(api, {"session_id": sid, "context": "The capital of France is", "greedy": True}).json()
    assert greedy["next_token"] == greedy["probabilities"][0]["token"]
    assert greedy["next_token_id"] == greedy["probabilities"][0]["token_id"]
    cold = post(api, {"session_id": sid, "context": "The capital of France is", "temperature": 0.3}).json()
    assert cold["probabilities"][0]["prob"] > greedy["probabilities"][0]["prob"]


def test_a_long_context_is_cut_to_the_window(api, session, smol):
    context = "one two three four five six seven eight nine ten " * 10
    body = post(api, {"session_id": str(session.pk), "context": context, "temperature": 1.0}).json()
    ids = smol.encode(context)
    assert body["context_tokens"] == 64
    assert body["context_used"] == smol.decode(ids[-64:])
    small = post(api, {"session_id": str(session.pk), "context": context, "context_window": 5}).json()
    assert small["context_used"] == smol.decode(ids[-5:])


def test_a_saved_run_or_a_live_stream_can_be_the_session(api, django_user_model, engine):
    owner = django_user_model.objects.create_user("ada", password="pw")
    run = PlaygroundRun.objects.create(owner=owner, model_name="smollm2-135m", input_text="Hi")
    # A saved run belongs to its owner: to anyone else it does not exist.
    assert post(api, {"session_id": str(run.pk), "context": "Hi"}).status_code == 404
    api.force_authenticate(owner)
    assert post(api, {"session_id": str(run.pk), "context": "Hi"}).status_code == 200
    api.force_authenticate(None)

    stream_id = str(uuid.uuid4())
    async_to_sync(services.aregister_stream)(stream_id, "smollm2-135m")  # what a websocket does on start
    assert post(api, {"session_id": stream_id, "context": "Hi"}).status_code == 200
    async_to_sync(services.aforget_stream)(stream_id)  # ... and on disconnect
    assert post(api, {"session_id": stream_id, "context": "Hi"}).status_code == 404


def test_an_unknown_session_is_404(api, db, engine):
    for sid in [str(uuid.uuid4()), "abc-123", "x" * 90]:
        response = post(api, {"session_id": sid, "context": "Hello", "temperature": 1.0})
        assert response.status_code == 404
        assert response.json()["error"] == "Session not found" and sid in response.json()["message"]


def test_someone_elses_session_is_404(api, django_user_model, engine):
    owner = django_user_model.objects.create_user("owner", password="pw")
    private = WheelSession.objects.create(model_name="smollm2-135m", owner=owner)
    assert post(api, {"session_id": str(private.pk), "context": "Hello"}).status_code == 404


def test_a_model_that_is_not_ready_is_400(api, db, engine):
    from modelworker import client

    unavailable = next((m for m in client.models() if m["status"] == "unavailable"), None)
    if unavailable is None:
        pytest.fail("this test needs a registered model whose weights are absent (gpt2 offline)")
    session = WheelSession.objects.create(model_name=unavailable["id"])
    response = post(api, {"session_id": str(session.pk), "context": "Hello", "temperature": 1.0})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "Model not initialized" and unavailable["reason"] in body["message"]


def test_text_the_tokenizer_cannot_represent_is_400_with_the_characters(api, session):
    # As a browser or curl sends it: JSON with the escape \ud800 (a lone surrogate).
    raw = json.dumps({"session_id": str(session.pk), "context": "Hi \ud800 there", "temperature": 1.0})
    response = api.post(URL, raw, content_type="application/json")
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "Unknown characters: ['\\ud800']"
    assert body["characters"] == ["\\ud800"] and body["code_points"] == ["U+D800"] and body["message"]


def test_a_failed_generation_is_500_with_the_reason(api, session, smol, monkeypatch):
    def broken(steps):
        raise RuntimeError("simulated out-of-memory")

    monkeypatch.setattr(smol.batcher, "forward", broken)  # a fault we cannot cause otherwise
    response = post(api, {"session_id": str(session.pk), "context": "A context nobody asked for yet 1234", "temperature": 1.0})
    assert response.status_code == 500
    body = response.json()
    assert body["error"].startswith("Generation failed: ") and "simulated out-of-memory" in body["error"]
    assert body["message"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"context": "Hi"}, "session_id"),
        ({"session_id": "x"}, "context"),
        ({"session_id": "x", "context": ""}, "context"),
        ({"session_id": "x", "context": "Hi", "temperature": 0}, "temperature"),
        ({"session_id": "x", "context": "Hi", "temperature": "warm"}, "temperature"),
        ({"session_id": "x", "context": "Hi", "temperature": 99}, "temperature"),
        ({"session_id": "x", "context": "Hi", "context_window": 0}, "context_window"),
    ],
)
def test_an_invalid_request_is_400(api, db, body, field):
    response = post(api, body)
    assert response.status_code == 400
    assert response.json()["error"] == "Invalid request" and field in response.json()["message"]


def test_invalid_json_is_400_json(api, db):
    response = api.post(URL, "{not json", content_type="application/json")
    assert response.status_code == 400 and response.json()["error"] == "Invalid JSON"
