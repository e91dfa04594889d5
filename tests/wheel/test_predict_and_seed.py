"""Predict, then reveal (guesses judged against the distribution the student
then sees) and same seed, same story, through the wheel API on the real model."""

import json

import pytest

from wheel.models import Guess, TokenEvent

pytestmark = pytest.mark.django_db


def post(api, path, data=None):
    return api.post(path, data=json.dumps(data or {}), content_type="application/json")


def new_session(api, prompt="The cat sat on the", **body):
    sid = post(api, "/api/sessions", body).json()["session_id"]
    assert post(api, f"/api/sessions/{sid}/set-prompt", {"prompt": prompt}).status_code == 200
    return sid


def top_token(api, sid):
    return api.get(f"/api/sessions/{sid}/next-token-probs").json()["above_threshold_tokens"][0]


def test_a_guess_of_the_top_token_is_revealed_as_rank_one_and_scored(api):
    sid = new_session(api)
    top = top_token(api, sid)
    made = post(api, f"/api/sessions/{sid}/guess", {"token_id": top["token_id"]})
    assert made.status_code == 201
    guess = made.json()["guess"]
    assert guess["rank"] == 1 and guess["is_top"] and guess["in_top3"]
    assert guess["probability"] == pytest.approx(top["probability"], rel=1e-5)
    assert guess["category"] == "above_threshold"
    assert made.json()["score"] == {
        "guesses": 1, "top1": 1, "top3": 1, "above_threshold": 1, "average_probability": pytest.approx(top["probability"], rel=1e-5)
    }


def test_a_typed_guess_of_several_tokens_counts_its_first_token_and_says_so(api):
    sid = new_session(api)
    made = post(api, f"/api/sessions/{sid}/guess", {"token_text": " mat and the dog"})
    assert made.status_code == 201
    guess = made.json()["guess"]
    assert guess["token_text"] == " mat" and guess["typed_text"] == " mat and the dog"
    assert "first token" in guess["note"]
    assert guess["rank"] > 1


def test_a_rare_guess_is_inside_other_with_its_rank(api):
    sid = new_session(api)
    made = post(api, f"/api/sessions/{sid}/guess", {"token_text": " photosynthesis"}).json()["guess"]
    assert made["category"] == "other" and made["rank"] > 20 and made["probability"] < 0.01


def test_one_guess_per_step_and_bad_guesses_store_nothing(api):
    sid = new_session(api)
    assert post(api, f"/api/sessions/{sid}/guess", {"token_text": " mat"}).status_code == 201
    again = post(api, f"/api/sessions/{sid}/guess", {"token_text": " floor"})
    assert again.status_code == 409 and again.json()["error"] == "Conflict"
    for bad in ({}, {"token_text": ""}, {"token_id": -1}, {"token_id": "3"}, {"token_id": 1, "token_text": "a"}):
        assert post(api, f"/api/sessions/{sid}/guess", bad).status_code == 400, bad
    assert post(api, f"/api/sessions/{sid}/guess", {"token_id": 10**9}).status_code == 400
    assert Guess.objects.filter(session_id=sid).count() == 1


def test_after_a_step_the_next_guess_is_new_and_the_history_shows_each_guess(api):
    sid = new_session(api)
    post(api, f"/api/sessions/{sid}/guess", {"token_text": " mat"})
    appended = post(api, f"/api/sessions/{sid}/append-token", {"token_text": " floor"}).json()
    assert post(api, f"/api/sessions/{sid}/guess", {"token_text": "."}).status_code == 201
    state = api.get(f"/api/sessions/{sid}").json()
    assert state["token_history"][0]["guess"]["token_text"] == " mat"
    assert appended["current_text"] == "The cat sat on the floor"
    assert state["predict_score"]["guesses"] == 2 and len(state["guesses"]) == 2


def test_guess_options_hold_the_top_tokens_and_are_stable(api):
    sid = new_session(api)
    first = api.get(f"/api/sessions/{sid}/guess-options").json()
    again = api.get(f"/api/sessions/{sid}/guess-options").json()
    assert first == again and len(first["options"]) == 8
    top = top_token(api, sid)
    assert top["token_id"] in {o["token_id"] for o in first["options"]}


def test_same_seed_same_story_and_another_seed_another(api):
    def story(seed, temperature=1.0):
        sid = new_session(api, "Once upon a time", seed=seed)
        api.get(f"/api/sessions/{sid}/next-token-probs?temperature={temperature}")
        return [
            post(api, f"/api/sessions/{sid}/append-token", {"category": "sample"}).json()["appended_token"]["token_id"]
            for _ in range(6)
        ], sid

    first, sid = story(1234)
    second, _ = story(1234)
    assert first == second
    assert [story(s)[0] for s in (1, 2, 3)] != [first] * 3  # other seeds tell other stories
    events = TokenEvent.objects.filter(session_id=sid).order_by("position")
    assert all(e.seed is not None for e in events)
    assert api.get(f"/api/sessions/{sid}").json()["seed"] == 1234


def test_a_seed_out_of_range_is_refused_and_nothing_changes(api):
    sid = new_session(api)
    for bad in (-1, 2**31, "12", 1.5):
        response = post(api, f"/api/sessions/{sid}/seed", {"seed": bad})
        assert response.status_code == 400, bad
    assert api.get(f"/api/sessions/{sid}").json()["seed"] is None
    assert post(api, f"/api/sessions/{sid}/seed", {"seed": 7}).json()["seed"] == 7
    assert post(api, "/api/sessions", {"seed": 2**31}).status_code == 400


def test_an_event_records_whether_the_choice_was_greedy(api):
    sid = new_session(api)
    top = top_token(api, sid)
    post(api, f"/api/sessions/{sid}/append-token", {"token_id": top["token_id"]})
    event = TokenEvent.objects.get(session_id=sid)
    assert event.greedy_token_id == top["token_id"]


def test_the_state_says_which_guess_belongs_to_the_current_text(api):
    sid = new_session(api)
    assert api.get(f"/api/sessions/{sid}").json()["current_guess"] is None
    post(api, f"/api/sessions/{sid}/guess", {"token_text": " mat"})
    assert api.get(f"/api/sessions/{sid}").json()["current_guess"]["token_text"] == " mat"
    post(api, f"/api/sessions/{sid}/append-token", {"token_text": " floor"})
    assert api.get(f"/api/sessions/{sid}").json()["current_guess"] is None  # a new step, no guess yet
    post(api, f"/api/sessions/{sid}/undo")
    assert api.get(f"/api/sessions/{sid}").json()["current_guess"]["token_text"] == " mat"
