"""What a client is told about a bad websocket message: the code, the field and
a sentence naming what is wrong (the serializers share the API's field types),
and that a bug is answered as a bug, not as something missing."""

import pytest
from asgiref.sync import sync_to_async

from common.errors import AppError
from playground import protocol
from playground import serializers as s
from playground.models import PlaygroundRun


def refused(serializer, **msg) -> AppError:
    with pytest.raises(AppError) as exc:
        protocol.validated(serializer, {"type": "x", **msg})
    return exc.value


@pytest.mark.parametrize(
    "fields, field, words",
    [
        ({"temperature": "hot"}, "temperature", "valid number"),
        ({"temperature": 0}, "temperature", "greater than or equal to 0.01"),
        ({"temperature": float("inf")}, "temperature", "valid number"),
        ({"top_p": 1.5}, "top_p", "less than or equal to 1"),
        ({"top_k": 2.5}, "top_k", "valid integer"),
        ({"greedy": "yes"}, "greedy", "boolean"),
        ({"speed_ms": 50}, "speed_ms", "0 (as fast as possible) or between 100 and 2000, not 50"),
        ({"speed_ms": 5000}, "speed_ms", "between 100 and 2000, not 5000"),
        ({"context_window": 0}, "context_window", "greater than or equal to 1"),
        ({"max_tokens": -1}, "max_tokens", "greater than or equal to 1"),
        ({"classroom_id": [1]}, "classroom_id", "must be an id"),
        ({"resume_tokens": [{"token_id": "x"}]}, "resume_tokens", "resume_tokens.0.token_id: A valid integer"),
    ],
)
def test_a_bad_start_field_is_named_with_what_is_wrong(fields, field, words):
    err = refused(s.StartMessage, text="Hi", **fields)
    assert err.code == "invalid_field" and err.extra["field"] == field
    assert err.message.startswith(f"{field}") and words in err.message
    assert err.ws_message(in_reply_to="start")["field"] == field


def test_every_bad_field_is_named_and_the_first_is_the_field():
    err = refused(s.StartMessage, text="Hi", temperature="hot", top_p=7)
    assert err.extra["field"] == "temperature"
    assert "temperature:" in err.message and "top_p:" in err.message


@pytest.mark.parametrize("text", [None, "", ...])
def test_no_text_asks_for_some(text):
    msg = {} if text is ... else {"text": text}
    err = refused(s.StartMessage, **msg)
    assert err.code == "empty_input" and err.message == "Type something to get started..."


def test_text_must_be_text_without_nul_but_may_hold_what_the_tokenizer_judges():
    assert refused(s.StartMessage, text=42).extra["field"] == "text"
    nul = refused(s.StartMessage, text="a\x00b")
    assert (nul.code, nul.message) == ("invalid_field", "text: must not contain NUL characters.")
    assert refused(s.StartMessage, text="x" * 4001).extra["field"] == "text"
    # A lone surrogate is the tokenizer's to refuse (it lists the characters).
    assert protocol.validated(s.StartMessage, {"text": "bad \ud800"})["text"] == "bad \ud800"


def test_null_means_the_default_but_a_null_class_means_no_class():
    data = protocol.validated(s.StartMessage, {"text": "Hi", "temperature": None, "greedy": None, "resume_tokens": None})
    assert data["temperature"] is None and data["greedy"] is False and data["resume_tokens"] == []
    assert data["speed_ms"] == 500 and data["paused"] is False and data["lesson_id"] is None
    assert "classroom_id" not in data  # missing: the class acting in the header
    assert protocol.validated(s.StartMessage, {"text": "Hi", "classroom_id": None})["classroom_id"] is None


def test_resume_tokens_keep_what_the_client_had():
    token = {"token_id": 7, "probability": 0.25, "chosen_by": "hand", "probabilities": [{"token_id": 7, "token": " a", "prob": 0.25}]}
    data = protocol.validated(s.StartMessage, {"text": "Hi", "resume_tokens": [token, {"token_id": 8}]})
    assert data["resume_tokens"] == [token, {"token_id": 8, "probability": 0.0, "chosen_by": "model", "probabilities": []}]


def test_step_set_speed_tokenize_save_and_load_messages():
    assert refused(s.StepMessage, index=0).extra["field"] == "index"
    assert protocol.validated(s.StepMessage, {"token_id": 3, "index": 1}) == {"token_id": 3, "index": 1}
    assert refused(s.SetSpeedMessage).message == "speed_ms: This field is required."
    assert refused(s.SetSpeedMessage, speed_ms=99).code == "invalid_field"
    assert refused(s.TokenizeMessage, text=["a"]).extra["field"] == "text"
    assert protocol.validated(s.TokenizeMessage, {"text": ""})["text"] == ""
    assert refused(s.SaveMessage, title="x" * 201).extra["field"] == "title"
    assert refused(s.LoadMessage, run_id="nope").message == "run_id: must be the id of a saved run."


@pytest.mark.django_db(transaction=True)
async def test_a_bug_while_loading_a_run_is_internal_error_not_not_found(ws, monkeypatch):
    from django.contrib.auth import get_user_model
    from django.test import Client

    @sync_to_async
    def signed_in():
        user = get_user_model().objects.create_user("ada", password="pw")
        client = Client()
        client.force_login(user)
        run = PlaygroundRun.objects.create(owner=user, model_name="smollm2-135m", input_text="Hi", prompt_token_ids=[1])
        return run, {"sessionid": client.cookies["sessionid"].value}

    run, cookies = await signed_in()
    s_ = await ws(cookies=cookies)

    def broken(user, run_id):
        raise RuntimeError("database went away")  # a fault we cannot cause otherwise

    monkeypatch.setattr("playground.services.get_run", broken)
    await s_.send(type="load", run_id=str(run.pk))
    err = await s_.until("error")
    assert err == {
        "type": "error",
        "code": "internal_error",
        "message": "The server could not handle that message.",
        "in_reply_to": "load",
    }
    monkeypatch.undo()
    await s_.send(type="load", run_id="00000000-0000-0000-0000-000000000000")
    missing = await s_.until("error")
    assert missing["code"] == "not_found" and missing["in_reply_to"] == "load"
    await s_.send(type="load", run_id=str(run.pk))
    assert (await s_.until("started"))["run_id"] == str(run.pk)
