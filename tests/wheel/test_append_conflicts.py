"""An append is judged against the history it was chosen for: when the
session changes while the model chooses (another tab undoes and appends,
or sets a new prompt), the append is refused with 409 and stores nothing,
even when the history has the same length as before."""

import json
import threading

import pytest
from rest_framework.test import APIClient

from modelworker import client
from wheel.models import TokenEvent

pytestmark = pytest.mark.django_db(transaction=True)


def post(api, path, data=None):
    return api.post(path, data=json.dumps(data) if data is not None else None, content_type="application/json")


@pytest.fixture
def two_tokens(api):
    sid = post(api, "/api/sessions", {}).json()["session_id"]
    assert post(api, f"/api/sessions/{sid}/set-prompt", {"prompt": "The cat sat on the"}).status_code == 200
    for text in (" mat", "."):
        assert post(api, f"/api/sessions/{sid}/append-token", {"token_text": text}).status_code == 200
    return sid


def while_the_model_chooses(monkeypatch, other_tab):
    """Run ``other_tab`` (its own client, its own thread and database
    connection) once, after the append read the history and before it writes:
    the race this guards against, made to happen every time."""
    real = client.choose
    pending = [other_tab]

    def choose(*args, **kwargs):
        if pending:
            tab = threading.Thread(target=pending.pop())
            tab.start()
            tab.join(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(client, "choose", choose)


def active(sid):
    return list(TokenEvent.objects.filter(session_id=sid, undone_at__isnull=True).order_by("position").values_list("token_text", flat=True))


def test_an_undo_and_append_meanwhile_refuse_the_append_though_the_length_is_the_same(api, two_tokens, monkeypatch):
    sid = two_tokens
    answers = []

    def other_tab():
        tab = APIClient()
        answers.append(post(tab, f"/api/sessions/{sid}/undo").status_code)
        answers.append(post(tab, f"/api/sessions/{sid}/append-token", {"token_text": "!"}).status_code)

    while_the_model_chooses(monkeypatch, other_tab)
    response = post(api, f"/api/sessions/{sid}/append-token", {"token_text": " and"})
    assert answers == [200, 200]
    assert response.status_code == 409, response.content
    assert response.json()["current_text"] == "The cat sat on the mat!"
    assert active(sid) == [" mat", "!"]
    assert api.get(f"/api/sessions/{sid}").json()["current_text"] == "The cat sat on the mat!"


def test_a_new_prompt_meanwhile_refuses_the_append(api, two_tokens, monkeypatch):
    sid = two_tokens

    def other_tab():
        assert post(APIClient(), f"/api/sessions/{sid}/set-prompt", {"prompt": "Once upon a time"}).status_code == 200

    while_the_model_chooses(monkeypatch, other_tab)
    response = post(api, f"/api/sessions/{sid}/append-token", {"token_text": " and"})
    assert response.status_code == 409, response.content
    assert response.json()["current_text"] == "Once upon a time"
    assert active(sid) == []


def test_with_nothing_meanwhile_the_append_lands_after_the_newest_token(api, two_tokens, monkeypatch):
    sid = two_tokens
    while_the_model_chooses(monkeypatch, lambda: None)
    response = post(api, f"/api/sessions/{sid}/append-token", {"token_text": " and"})
    assert response.status_code == 200, response.content
    assert [t["token_text"] for t in response.json()["token_history"]] == [" mat", ".", " and"]
    assert active(sid) == [" mat", ".", " and"]
