"""Saved runs (signed-in users), continuing after a dropped connection, usage
and class quotas: through the websocket and the runs API."""

import pytest
from asgiref.sync import sync_to_async

from classrooms.models import Classroom, DailyUsage, Membership
from playground.models import PlaygroundRun

pytestmark = pytest.mark.django_db(transaction=True)

PROMPT = "The robot opened the door and"


@sync_to_async
def signed_in(username, **extra):
    from django.contrib.auth import get_user_model
    from django.test import Client

    user = get_user_model().objects.create_user(username, password="pw", **extra)
    client = Client()
    client.force_login(user)
    return user, {"sessionid": client.cookies["sessionid"].value}


async def test_a_signed_in_user_saves_a_run_and_loads_it_later(ws, smol):
    user, cookies = await signed_in("ada")
    s = await ws(cookies=cookies)
    assert s.hello["signed_in"] is True
    await s.send(type="start", text=PROMPT, paused=True, greedy=True, temperature=0.8, top_k=20)
    await s.until("started")
    await s.send(type="step")
    first = (await s.tokens(1))[0]
    await s.send(type="step", token_id=first["probabilities"][2]["token_id"], index=0)
    hand = (await s.tokens(1))[0]
    for _ in range(3):
        await s.send(type="step")
    rest = await s.tokens(3)
    await s.send(type="save", title="Robot story")
    saved = await s.until("saved")
    assert saved["title"] == "Robot story" and saved["tokens"] == 4

    run = await PlaygroundRun.objects.aget(pk=saved["run_id"])
    assert run.owner_id == user.pk and run.model_name == "smollm2-135m"
    assert run.input_text == PROMPT and run.prompt_token_ids == smol.encode(PROMPT)
    assert [t["token_id"] for t in run.tokens] == [hand["token_id"]] + [t["token_id"] for t in rest]
    assert [t["chosen_by"] for t in run.tokens] == ["hand", "model", "model", "model"]
    assert run.tokens[0]["probability"] == pytest.approx(hand["probability"])
    assert len(run.tokens[0]["probabilities"]) == 10
    assert run.settings["temperature"] == 0.8 and run.settings["top_k"] == 20 and run.settings["greedy"] is True
    assert run.generated_text == hand["token"] + "".join(t["token"] for t in rest)
    await s.close()

    # Later, in another connection: the run comes back paused, and continues.
    s2 = await ws(cookies=cookies)
    await s2.send(type="load", run_id=saved["run_id"])
    loaded = await s2.until("started")
    assert loaded["run_id"] == saved["run_id"] and loaded["state"] == "paused"
    assert loaded["text"] == PROMPT and loaded["temperature"] == 0.8
    assert [t["token_id"] for t in loaded["tokens"]] == [t["token_id"] for t in run.tokens]
    assert loaded["tokens"][0]["chosen_by"] == "hand"
    await s2.send(type="step")
    nxt = (await s2.tokens(1))[0]
    assert nxt["index"] == 4
    assert nxt["context_used"] == PROMPT + run.generated_text


async def test_a_run_is_private_to_its_owner(ws):
    owner, _ = await signed_in("owner")
    run = await PlaygroundRun.objects.acreate(
        owner=owner, model_name="smollm2-135m", input_text="Hi", prompt_token_ids=[1], tokens=[], settings={}
    )
    _, cookies = await signed_in("mallory")
    s = await ws(cookies=cookies)
    await s.send(type="load", run_id=str(run.pk))
    err = await s.until("error")
    assert err["code"] == "not_found"
    anonymous = await ws()
    await anonymous.send(type="load", run_id=str(run.pk))
    assert (await anonymous.until("error"))["code"] == "not_signed_in"


async def test_after_a_dropped_connection_the_stream_continues_from_the_same_tokens(ws, smol):
    s = await ws()
    await s.send(type="start", text=PROMPT, speed_ms=0, max_tokens=4, greedy=True, context_window=256)
    before = await s.tokens(4)
    await s.close()

    s2 = await ws()  # what the drawer does on reconnecting
    resume = [
        {"token_id": t["token_id"], "probability": t["probability"], "chosen_by": t["chosen_by"], "probabilities": t["probabilities"]}
        for t in before
    ]
    await s2.send(type="start", text=PROMPT, speed_ms=0, max_tokens=6, greedy=True, context_window=256, resume_tokens=resume)
    started = await s2.until("started")
    assert [t["token"] for t in started["tokens"]] == [t["token"] for t in before]
    after = await s2.tokens(2)
    assert after[0]["index"] == 4
    assert after[0]["context_used"] == PROMPT + "".join(t["token"] for t in before)


async def test_generated_tokens_are_counted_for_the_usage_page(ws):
    user, cookies = await signed_in("counted")
    s = await ws(cookies=cookies)
    await s.send(type="start", text=PROMPT, speed_ms=0, max_tokens=7)
    await s.tokens(7)
    await s.until("done")
    await s.close()
    rows = [r async for r in DailyUsage.objects.filter(user=user, tool="playground")]
    assert sum(r.tokens for r in rows) == 7
    assert sum(r.sessions for r in rows) == 1


async def test_a_student_over_the_class_quota_is_paused(ws):
    student, cookies = await signed_in("student")
    classroom = await Classroom.objects.acreate(name="Year 9", daily_token_quota=3, max_tokens=50)
    await Membership.objects.acreate(classroom=classroom, user=student, role=Membership.STUDENT)
    s = await ws(cookies=cookies)
    await s.send(type="start", text=PROMPT, speed_ms=0, classroom_id=classroom.pk)
    started = await s.until("started")
    assert started["classroom_id"] == classroom.pk and started["quota_left"] == 3
    assert started["max_tokens"] == 50  # the class's limit
    await s.tokens(3)
    err = await s.until("error")
    assert err["code"] == "quota_exceeded"
    assert (await s.until("paused"))["reason"] == "quota"


async def test_class_limits_hold_on_the_socket(ws):
    student, cookies = await signed_in("limited")
    classroom = await Classroom.objects.acreate(name="Limits", temperature_min=0.5, temperature_max=1.5, context_window=16)
    await Membership.objects.acreate(classroom=classroom, user=student, role=Membership.STUDENT)
    s = await ws(cookies=cookies)
    await s.send(type="start", text=PROMPT, classroom_id=classroom.pk, temperature=3.0)
    assert (await s.until("error"))["code"] == "temperature_out_of_range"
    await s.send(type="start", text=PROMPT, classroom_id=classroom.pk, context_window=64)
    assert (await s.until("started"))["context_window"] == 16  # a ceiling: cut to the class's
    stranger = await ws()
    await stranger.send(type="start", text=PROMPT, classroom_id=classroom.pk)
    assert (await stranger.until("error"))["code"] == "not_found"


# --------------------------------------------------------------------------- the runs API


@pytest.fixture
def two_users(django_user_model):
    ada = django_user_model.objects.create_user("ada", password="pw")
    bob = django_user_model.objects.create_user("bob", password="pw")
    run = PlaygroundRun.objects.create(
        owner=ada,
        title="Ada's run",
        model_name="smollm2-135m",
        input_text="Hello",
        generated_text=" world",
        prompt_token_ids=[19556],
        tokens=[{"token_id": 905, "token": " world", "probability": 0.3, "chosen_by": "model", "probabilities": []}],
        settings={"temperature": 1.0},
    )
    return ada, bob, run


def test_the_runs_api_lists_only_my_runs(api, two_users):
    ada, bob, run = two_users
    assert api.get("/api/playground/runs").status_code == 403
    api.force_authenticate(ada)
    body = api.get("/api/playground/runs").json()
    assert [r["id"] for r in body["runs"]] == [str(run.pk)]
    assert body["runs"][0]["tokens"] == 1 and body["runs"][0]["title"] == "Ada's run"
    api.force_authenticate(bob)
    assert api.get("/api/playground/runs").json() == {"runs": []}
    response = api.get(f"/api/playground/runs/{run.pk}")
    assert response.status_code == 404 and response.json()["error"] == "Run not found"


def test_a_run_exports_as_json_and_text(api, two_users):
    ada, _, run = two_users
    api.force_authenticate(ada)
    text = api.get(f"/api/playground/runs/{run.pk}/export?format=text")
    assert text.status_code == 200 and text.content.decode() == "Hello world"
    assert "attachment" in text["Content-Disposition"]
    data = api.get(f"/api/playground/runs/{run.pk}/export?format=json").json()
    assert data["tokens"][0]["token_id"] == 905 and data["input_text"] == "Hello"  # the same file as My runs


def test_only_the_owner_deletes_a_run(api, two_users, django_user_model):
    ada, bob, run = two_users
    api.force_authenticate(bob)
    assert api.delete(f"/api/playground/runs/{run.pk}").status_code == 404
    api.force_authenticate(ada)
    assert api.delete(f"/api/playground/runs/{run.pk}").json()["deleted"] is True
    assert not PlaygroundRun.objects.filter(pk=run.pk).exists()
