"""The wheel API against the seed document, on the real default model."""

import csv
import io
import json
import threading
import uuid

import pytest
from django.utils import timezone

from wheel.models import TokenEvent, WheelSession

pytestmark = pytest.mark.django_db


def post(api, path, data=None, **kwargs):
    return api.post(path, data=json.dumps(data) if data is not None else None, content_type="application/json", **kwargs)


@pytest.fixture
def session_id(api):
    response = post(api, "/api/sessions", {})
    assert response.status_code == 201
    return response.json()["session_id"]


@pytest.fixture
def prompted(api, session_id):
    assert post(api, f"/api/sessions/{session_id}/set-prompt", {"prompt": "The cat sat on the"}).status_code == 200
    return session_id


def probs(api, session_id, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    response = api.get(f"/api/sessions/{session_id}/next-token-probs?{query}")
    assert response.status_code == 200, response.content
    return response.json()


# ---- the seed's example user flow, end to end -------------------------------------


def test_the_seeds_example_user_flow_works_as_written(api):
    created = post(api, "/api/sessions")
    assert created.status_code == 201
    sid = created.json()["session_id"]
    assert created.json()["model_name"] == "smollm2-135m"

    prompt = post(api, f"/api/sessions/{sid}/set-prompt", {"prompt": "The cat sat on the"}).json()
    assert prompt == {
        "session_id": sid,
        "current_text": "The cat sat on the",
        "token_count": 5,
        "message": "Prompt set successfully",
    }

    first = probs(api, sid, threshold=0.01)
    assert all(t["probability"] >= 0.01 for t in first["above_threshold_tokens"])
    assert first["vocabulary_size"] == 49152
    assert first["other_category"]["token_count"] == 49152 - len(first["above_threshold_tokens"])

    other = post(api, f"/api/sessions/{sid}/append-token", {"category": "other"}).json()
    token = other["appended_token"]
    assert token["category"] == "other" and token["sampled_from_other"] is True
    assert token["probability"] < 0.01
    assert other["current_text"].startswith("The cat sat on the")
    assert other["other_category_info"]["selected_token_rank"] >= 1
    assert other["token_history"][0]["sampled_from_other"] is True

    undone = post(api, f"/api/sessions/{sid}/undo").json()
    assert undone["current_text"] == "The cat sat on the"
    assert undone["token_history"] == []

    again = probs(api, sid, threshold=0.01)
    assert again["above_threshold_tokens"] == first["above_threshold_tokens"]

    # The seed's ids are GPT-2's; the text is what the student picked.
    mat = post(api, f"/api/sessions/{sid}/append-token", {"token_id": 2214, "token_text": " mat"})
    assert mat.status_code == 200
    assert mat.json()["current_text"] == "The cat sat on the mat"
    assert "warnings" in mat.json()

    deleted = api.delete(f"/api/sessions/{sid}")
    assert deleted.json() == {"message": "Session deleted successfully", "session_id": sid}
    assert api.get(f"/api/sessions/{sid}").status_code == 404


# ---- create / get / delete --------------------------------------------------------------


def test_create_returns_201_with_the_seeds_fields(api):
    body = post(api, "/api/sessions", {"model_name": "smollm2-135m"}).json()
    assert set(body) == {"session_id", "model_name", "created_at"}
    assert uuid.UUID(body["session_id"])


def test_create_with_an_unknown_model_is_400_and_creates_nothing(api):
    response = post(api, "/api/sessions", {"model_name": "gpt-17"})
    assert response.status_code == 400
    assert response.json()["error"] == "Invalid model name"
    assert WheelSession.objects.count() == 0


def test_create_with_an_unavailable_model_is_503_with_the_reason(api):
    response = post(api, "/api/sessions", {"model_name": "gpt2"})
    assert response.status_code == 503
    assert response.json()["error"] == "Model unavailable"
    assert "Hugging Face cache" in response.json()["message"]
    assert WheelSession.objects.count() == 0


def test_get_session_shows_the_state(api, prompted):
    post(api, f"/api/sessions/{prompted}/append-token", {"token_text": " mat"})
    state = api.get(f"/api/sessions/{prompted}").json()
    assert state["initial_prompt"] == "The cat sat on the"
    assert state["current_text"] == "The cat sat on the mat"
    assert state["generation_count"] == 1
    assert state["token_history"][0]["token_text"] == " mat"
    assert {"created_at", "last_accessed", "model_name"} <= set(state)


@pytest.mark.parametrize("method", ["get", "delete"])
def test_an_unknown_session_is_404_in_json(api, method):
    response = getattr(api, method)(f"/api/sessions/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json()["error"] == "Session not found"


def test_a_malformed_session_id_is_a_json_404_not_an_html_page(api):
    response = api.get("/api/sessions/not-a-uuid/next-token-probs")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert set(response.json()) == {"error", "message"}


def test_a_wrong_method_is_a_json_405(api, session_id):
    response = api.put(f"/api/sessions/{session_id}/undo")
    assert response.status_code == 405
    assert response.json()["error"] == "Method not allowed"


# ---- set-prompt ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"prompt": ""}, "Empty"),
        ({"prompt": "   \n "}, "Empty"),
        ({}, "required"),
        ({"prompt": 12}, ""),
        ({"prompt": "x" * 2001}, "2001 characters"),
        ({"prompt": "bad\u0000byte"}, "Null characters"),
        ({"prompt": ["a", "list"]}, ""),
    ],
)
def test_bad_prompts_are_400_and_change_nothing(api, prompted, body, fragment):
    response = post(api, f"/api/sessions/{prompted}/set-prompt", body)
    assert response.status_code == 400
    assert response.json()["error"] == "Invalid request"
    assert fragment in response.json()["message"]
    assert api.get(f"/api/sessions/{prompted}").json()["current_text"] == "The cat sat on the"


def test_a_prompt_at_the_limit_is_accepted(api, session_id):
    response = post(api, f"/api/sessions/{session_id}/set-prompt", {"prompt": "a " * 1000})
    assert response.status_code == 200


def test_malformed_json_is_400_in_the_error_shape(api, session_id):
    response = api.post(f"/api/sessions/{session_id}/set-prompt", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"] == "Invalid JSON"


def test_a_body_over_the_size_limit_is_413_in_json(api, prompted):
    response = post(api, f"/api/sessions/{prompted}/set-prompt", {"prompt": "a" * 300_000})
    assert response.status_code == 413
    assert response.json()["error"] == "Request too large"
    assert api.get(f"/api/sessions/{prompted}").json()["current_text"] == "The cat sat on the"


def test_resetting_the_prompt_clears_the_history_but_keeps_the_rows(api, prompted):
    post(api, f"/api/sessions/{prompted}/append-token", {"token_text": " mat"})
    post(api, f"/api/sessions/{prompted}/set-prompt", {"prompt": "Once upon a time"})
    state = api.get(f"/api/sessions/{prompted}").json()
    assert state["token_history"] == [] and state["current_text"] == "Once upon a time"
    assert TokenEvent.objects.filter(session_id=prompted, removed_by="reset").count() == 1


def test_emoji_split_across_tokens_round_trips_through_the_token_ids(api, session_id):
    post(api, f"/api/sessions/{session_id}/set-prompt", {"prompt": "I love 🦜 parrots"})
    state = api.get(f"/api/sessions/{session_id}").json()
    assert state["current_text"] == "I love 🦜 parrots"
    assert state["prompt_token_count"] >= 4


# ---- next-token-probs ----------------------------------------------------------------------


def test_next_token_probs_has_every_field_of_the_seed(api, prompted):
    body = probs(api, prompted, threshold=0.01, other_top_k=5, temperature=1.0)
    assert {
        "session_id", "current_text", "threshold", "temperature", "above_threshold_tokens", "other_category",
        "total_above_threshold_probability", "vocabulary_size",
    } <= set(body)
    first = body["above_threshold_tokens"][0]
    assert set(first) == {"token_id", "token_text", "probability", "log_probability"}
    assert first["log_probability"] == pytest.approx(__import__("math").log(first["probability"]), rel=1e-6)
    other = body["other_category"]
    assert len(other["sample_tokens"]) == 5
    assert all(t["probability"] < 0.01 for t in other["sample_tokens"])
    assert body["total_above_threshold_probability"] + other["total_probability"] == pytest.approx(1.0, abs=1e-4)
    probabilities = [t["probability"] for t in body["above_threshold_tokens"]]
    assert probabilities == sorted(probabilities, reverse=True)


def test_a_higher_threshold_gives_fewer_segments(api, prompted):
    low = probs(api, prompted, threshold=0.005)["above_threshold_tokens"]
    high = probs(api, prompted, threshold=0.05)["above_threshold_tokens"]
    assert len(high) < len(low)


def test_temperature_reshapes_the_distribution(api, prompted):
    cold = probs(api, prompted, temperature=0.3)["above_threshold_tokens"][0]["probability"]
    hot = probs(api, prompted, temperature=2.0)["above_threshold_tokens"]
    assert cold > (hot[0]["probability"] if hot else 0)


def test_top_p_removes_the_tail_from_other(api, prompted):
    body = probs(api, prompted, top_p=0.5)
    assert body["excluded_by_top_p"] > 40000
    assert body["other_category"]["token_count"] + len(body["above_threshold_tokens"]) + body["excluded_by_top_p"] == 49152


@pytest.mark.parametrize(
    "params",
    [
        {"threshold": 0},
        {"threshold": 1.5},
        {"threshold": -0.1},
        {"threshold": "nan"},
        {"threshold": "NaN"},
        {"threshold": "abc"},
        {"temperature": 0},
        {"temperature": -1},
        {"temperature": 99},
        {"temperature": "inf"},
        {"top_p": 0},
        {"top_p": 1.01},
        {"other_top_k": -1},
        {"other_top_k": 1000},
        {"other_top_k": "x"},
    ],
)
def test_bad_parameters_are_400(api, prompted, params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    response = api.get(f"/api/sessions/{prompted}/next-token-probs?{query}")
    assert response.status_code == 400
    assert response.json()["error"] == "Invalid request"
    assert list(params)[0] in response.json()["message"]


def test_next_token_probs_before_a_prompt_is_400(api, session_id):
    response = api.get(f"/api/sessions/{session_id}/next-token-probs")
    assert response.status_code == 400
    assert response.json()["error"] == "No prompt set"


# ---- append-token --------------------------------------------------------------------------


def test_append_by_token_id_uses_the_shown_distribution(api, prompted):
    shown = probs(api, prompted, threshold=0.05, temperature=0.7)
    top = shown["above_threshold_tokens"][0]
    body = post(api, f"/api/sessions/{prompted}/append-token", {"token_id": top["token_id"]}).json()
    assert body["appended_token"]["probability"] == pytest.approx(top["probability"], rel=1e-5)
    assert body["appended_token"]["category"] == "above_threshold"
    assert body["previous_text"] == "The cat sat on the"
    assert body["current_text"] == "The cat sat on the" + top["token_text"]
    event = TokenEvent.objects.get(session_id=prompted)
    assert (event.threshold, event.temperature) == (0.05, 0.7)


def test_a_token_below_the_shown_threshold_is_recorded_as_other(api, prompted):
    shown = probs(api, prompted, threshold=0.05)
    sample = shown["other_category"]["sample_tokens"][0]
    body = post(api, f"/api/sessions/{prompted}/append-token", {"token_id": sample["token_id"]}).json()
    assert body["appended_token"]["category"] == "other"
    assert body["appended_token"]["sampled_from_other"] is False
    assert body["appended_token"]["method"] == "picked"


def test_drawing_from_other_respects_the_threshold_the_student_saw(api, prompted):
    probs(api, prompted, threshold=0.04)
    for seed in range(5):
        body = post(api, f"/api/sessions/{prompted}/append-token", {"category": "other", "seed": seed}).json()
        assert body["appended_token"]["probability"] < 0.04
        assert body["other_category_info"]["total_probability"] > 0.5
        post(api, f"/api/sessions/{prompted}/undo")


def test_a_spin_samples_the_whole_wheel_and_says_where_it_landed(api, prompted):
    probs(api, prompted, threshold=0.02)
    landed = set()
    for seed in range(12):
        body = post(api, f"/api/sessions/{prompted}/append-token", {"category": "sample", "seed": seed}).json()
        token = body["appended_token"]
        assert body["landed_in"] == token["category"]
        assert token["method"] == "spun"
        assert (token["probability"] >= 0.02) == (token["category"] == "above_threshold")
        landed.add(token["category"])
        post(api, f"/api/sessions/{prompted}/undo")
    assert landed == {"above_threshold", "other"}


def test_the_same_seed_spins_the_same_token(api, prompted):
    a = post(api, f"/api/sessions/{prompted}/append-token", {"category": "sample", "seed": 5}).json()
    post(api, f"/api/sessions/{prompted}/undo")
    b = post(api, f"/api/sessions/{prompted}/append-token", {"category": "sample", "seed": 5}).json()
    assert a["appended_token"]["token_id"] == b["appended_token"]["token_id"]


def test_the_context_is_the_token_ids_not_a_retokenised_text(api, prompted):
    # " m" + "at" as two tokens decodes to " mat", which would re-tokenise as one token.
    first = post(api, f"/api/sessions/{prompted}/append-token", {"token_text": " m"}).json()
    second = post(api, f"/api/sessions/{prompted}/append-token", {"token_text": "at"}).json()
    assert second["current_text"] == "The cat sat on the mat"
    assert [t["token_text"] for t in second["token_history"]] == [" m", "at"]
    assert first["appended_token"]["token_id"] != second["appended_token"]["token_id"]


@pytest.mark.parametrize(
    "body, status, error",
    [
        ({}, 400, "Invalid request"),
        ({"token_id": -1}, 400, "Invalid request"),
        ({"token_id": 10**12}, 400, "Invalid token"),
        ({"token_id": "12"}, 400, "Invalid request"),
        ({"token_id": True}, 400, "Invalid request"),
        ({"token_id": 1.5}, 400, "Invalid request"),
        ({"token_text": " not-a-single-token-at-all"}, 400, "Invalid token"),
        ({"token_text": ""}, 400, "Invalid request"),
        ({"category": "bogus"}, 400, "Invalid request"),
        ({"category": "other", "token_id": 5}, 400, "Invalid request"),
        ({"category": "other", "threshold": "nan"}, 400, "Invalid request"),
        ({"category": "sample", "temperature": 0}, 400, "Invalid request"),
        ({"category": "other", "threshold": 0.5, "top_p": 0.0001}, 400, "Other is empty"),
    ],
)
def test_bad_appends_are_refused_and_change_nothing(api, prompted, body, status, error):
    response = post(api, f"/api/sessions/{prompted}/append-token", body)
    assert response.status_code == status, response.content
    assert response.json()["error"] == error
    assert TokenEvent.objects.filter(session_id=prompted).count() == 0
    assert api.get(f"/api/sessions/{prompted}").json()["current_text"] == "The cat sat on the"


def test_a_token_text_that_is_not_one_token_is_named_in_the_error(api, prompted):
    response = post(api, f"/api/sessions/{prompted}/append-token", {"token_text": " windowsill-and-more"})
    assert " windowsill-and-more" in response.json()["message"]


def test_append_before_a_prompt_is_400(api, session_id):
    response = post(api, f"/api/sessions/{session_id}/append-token", {"token_id": 5})
    assert response.status_code == 400
    assert response.json()["error"] == "No prompt set"


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_land_in_order_or_are_refused(api, prompted):
    from rest_framework.test import APIClient

    results = []

    def append(seed):
        client = APIClient()
        response = client.post(
            f"/api/sessions/{prompted}/append-token",
            data=json.dumps({"category": "sample", "seed": seed}),
            content_type="application/json",
        )
        results.append(response.status_code)

    threads = [threading.Thread(target=append, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert set(results) <= {200, 409}
    active = list(TokenEvent.objects.filter(session_id=prompted, undone_at__isnull=True).order_by("position"))
    assert [e.position for e in active] == list(range(results.count(200)))
    state = api.get(f"/api/sessions/{prompted}").json()
    assert state["current_text"] == "The cat sat on the" + "".join(e.token_text for e in active)


# ---- undo ------------------------------------------------------------------------------------


def test_undo_removes_the_last_token_and_keeps_the_row_for_review(api, prompted):
    post(api, f"/api/sessions/{prompted}/append-token", {"token_text": " mat"})
    post(api, f"/api/sessions/{prompted}/append-token", {"token_text": "."})
    body = post(api, f"/api/sessions/{prompted}/undo").json()
    assert body["previous_text"] == "The cat sat on the mat."
    assert body["current_text"] == "The cat sat on the mat"
    assert body["removed_token"]["token_text"] == "."
    assert [t["token_text"] for t in body["token_history"]] == [" mat"]
    assert body["message"] == "Last token removed successfully"
    assert TokenEvent.objects.filter(session_id=prompted, removed_by="undo").count() == 1


def test_undo_with_only_the_prompt_is_the_seeds_400(api, prompted):
    response = post(api, f"/api/sessions/{prompted}/undo")
    assert response.status_code == 400
    assert response.json() == {
        "error": "Cannot undo",
        "message": "No generated tokens to remove. Only initial prompt remains.",
        "current_text": "The cat sat on the",
    }


# ---- statistics / fork / compare / export ---------------------------------------------------


def test_statistics_summarise_the_generated_tokens(api, prompted):
    probs(api, prompted, threshold=0.01)
    a = post(api, f"/api/sessions/{prompted}/append-token", {"token_text": " mat"}).json()["appended_token"]
    b = post(api, f"/api/sessions/{prompted}/append-token", {"category": "other", "seed": 1}).json()["appended_token"]
    post(api, f"/api/sessions/{prompted}/append-token", {"token_text": "!"})
    post(api, f"/api/sessions/{prompted}/undo")
    stats = api.get(f"/api/sessions/{prompted}/statistics").json()
    assert stats["generation_count"] == 2
    assert stats["average_probability"] == pytest.approx((a["probability"] + b["probability"]) / 2)
    assert stats["other_frequency"] == pytest.approx(1.0)  # " mat" is below 1% for this model too
    assert stats["undo_count"] == 1
    expected = __import__("math").exp(-(a["log_probability"] + b["log_probability"]) / 2)
    assert stats["perplexity"] == pytest.approx(expected, rel=1e-6)


def test_statistics_of_an_empty_session_have_no_averages(api, prompted):
    stats = api.get(f"/api/sessions/{prompted}/statistics").json()
    assert stats["generation_count"] == 0 and stats["perplexity"] is None


def test_fork_copies_the_state_into_an_independent_session(api, prompted):
    post(api, f"/api/sessions/{prompted}/append-token", {"token_text": " mat"})
    forked = post(api, f"/api/sessions/{prompted}/fork")
    assert forked.status_code == 201
    fork = forked.json()
    assert fork["session_id"] != prompted and fork["forked_from"] == prompted
    assert fork["current_text"] == "The cat sat on the mat"
    post(api, f"/api/sessions/{fork['session_id']}/append-token", {"token_text": "."})
    assert api.get(f"/api/sessions/{prompted}").json()["current_text"] == "The cat sat on the mat"
    assert api.get(f"/api/sessions/{fork['session_id']}").json()["current_text"] == "The cat sat on the mat."


def test_compare_shows_greedy_beside_sampled_without_changing_the_session(api, prompted):
    body = post(api, f"/api/sessions/{prompted}/compare", {"n": 6, "seed": 3}).json()
    assert 1 <= len(body["greedy"]["tokens"]) <= 6
    shown = probs(api, prompted)
    assert body["greedy"]["tokens"][0]["token_id"] == shown["above_threshold_tokens"][0]["token_id"]
    assert body["sampled"]["text"] == "".join(t["token_text"] for t in body["sampled"]["tokens"])
    again = post(api, f"/api/sessions/{prompted}/compare", {"n": 6, "seed": 3}).json()
    assert again["greedy"] == body["greedy"] and again["sampled"] == body["sampled"]
    assert api.get(f"/api/sessions/{prompted}").json()["generation_count"] == 0


@pytest.mark.parametrize("body", [{"n": 0}, {"n": 51}, {"n": "ten"}, {"temperature": -1}])
def test_compare_refuses_bad_input(api, prompted, body):
    response = post(api, f"/api/sessions/{prompted}/compare", body)
    assert response.status_code == 400


def test_export_as_json_and_csv(api, prompted):
    post(api, f"/api/sessions/{prompted}/append-token", {"token_text": " mat"})
    as_json = api.get(f"/api/sessions/{prompted}/export?format=json")
    assert as_json["Content-Disposition"].startswith("attachment")
    data = json.loads(as_json.content)
    assert data["token_history"][0]["token_text"] == " mat"
    assert data["statistics"]["generation_count"] == 1
    as_csv = api.get(f"/api/sessions/{prompted}/export?format=csv")
    assert as_csv["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.content.decode())))
    assert rows[0]["token_text"] == " mat" and rows[0]["category"] == "other"
    assert api.get(f"/api/sessions/{prompted}/export?format=xml").status_code == 400


# ---- models, expiry, throttling, schema ----------------------------------------------------------


def test_models_lists_the_registry_with_status(api):
    models = api.get("/api/models").json()["models"]
    ids = [m["id"] for m in models]
    assert ids[:4] == ["smollm2-135m", "gpt2", "gpt2-medium", "gpt2-large"]
    assert [m["default"] for m in models].count(True) == 1
    assert {"id", "name", "description", "parameters", "default", "status", "reason"} <= set(models[0])


def test_healthz_reports_each_models_state(client, engine):
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert {"id": "smollm2-135m", "status": "ready", "reason": None} in body["models"]


def test_an_anonymous_session_expires_after_an_hour_idle(api, prompted, settings):
    WheelSession.objects.filter(pk=prompted).update(last_accessed=timezone.now() - timezone.timedelta(minutes=59))
    assert api.get(f"/api/sessions/{prompted}").status_code == 200  # and this access renews it
    WheelSession.objects.filter(pk=prompted).update(last_accessed=timezone.now() - timezone.timedelta(minutes=61))
    assert api.get(f"/api/sessions/{prompted}").status_code == 404
    assert post(api, f"/api/sessions/{prompted}/append-token", {"token_text": " mat"}).status_code == 404


def test_reads_renew_the_hour_at_most_once_a_minute(api, prompted):
    """Every read keeps the session alive, but without a database write per request."""
    recent = timezone.now() - timezone.timedelta(seconds=20)
    WheelSession.objects.filter(pk=prompted).update(last_accessed=recent)
    assert api.get(f"/api/sessions/{prompted}").status_code == 200
    assert WheelSession.objects.get(pk=prompted).last_accessed == recent
    older = timezone.now() - timezone.timedelta(seconds=90)
    WheelSession.objects.filter(pk=prompted).update(last_accessed=older)
    assert api.get(f"/api/sessions/{prompted}").status_code == 200
    assert WheelSession.objects.get(pk=prompted).last_accessed > recent


def test_the_purge_command_deletes_only_expired_anonymous_sessions(api, prompted, django_user_model):
    from django.core.management import call_command

    owner = django_user_model.objects.create_user("kept", password="x")
    old = timezone.now() - timezone.timedelta(hours=3)
    kept = WheelSession.objects.create(model_name="smollm2-135m", owner=owner, last_accessed=old)
    WheelSession.objects.filter(pk=prompted).update(last_accessed=old)
    fresh = post(api, "/api/sessions").json()["session_id"]
    call_command("purge_sessions")
    remaining = set(WheelSession.objects.values_list("pk", flat=True))
    assert remaining == {kept.pk, uuid.UUID(fresh)}


def test_a_users_session_is_invisible_to_others(api, django_user_model):
    alice = django_user_model.objects.create_user("alice", password="pw")
    bob = django_user_model.objects.create_user("bob", password="pw")
    api.force_authenticate(alice)
    sid = post(api, "/api/sessions").json()["session_id"]
    assert api.get(f"/api/sessions/{sid}").status_code == 200
    api.force_authenticate(bob)
    assert api.get(f"/api/sessions/{sid}").status_code == 404
    api.force_authenticate(None)
    assert api.get(f"/api/sessions/{sid}").status_code == 404


def test_a_session_is_throttled_with_retry_after(api, session_id, monkeypatch):
    from wheel.throttles import SessionRateThrottle

    monkeypatch.setattr(SessionRateThrottle, "THROTTLE_RATES", {"session": "3/min"})
    codes = [api.get(f"/api/sessions/{session_id}").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    response = api.get(f"/api/sessions/{session_id}")
    assert response.json()["error"] == "Too many requests"
    assert int(response["Retry-After"]) > 0
    # Another session (another student behind the same school IP) is not affected.
    other = post(api, "/api/sessions").json()["session_id"]
    assert api.get(f"/api/sessions/{other}").status_code == 200


def test_the_openapi_schema_and_its_docs_page_are_served_locally(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    for path in [
        "/api/sessions", "/api/sessions/{session_id}", "/api/sessions/{session_id}/set-prompt",
        "/api/sessions/{session_id}/next-token-probs", "/api/sessions/{session_id}/append-token",
        "/api/sessions/{session_id}/undo", "/api/sessions/{session_id}/statistics",
        "/api/sessions/{session_id}/fork", "/api/sessions/{session_id}/compare",
        "/api/sessions/{session_id}/export", "/api/models",
    ]:
        assert any(p.rstrip("/") == path for p in paths), path
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    import re

    assets = re.findall(rb'(?:src|href)="([^"]+)"', docs.content)
    assert any(b"swagger-ui" in a for a in assets)
    assert all(a.startswith(b"/static/") or a.startswith(b"/api/") for a in assets), assets
