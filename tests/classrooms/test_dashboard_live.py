"""The class dashboard and the live class wheel (pages, actions, socket)."""

import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from classrooms import live
from classrooms.models import LiveRound, LiveSpin

from .conftest import VIEWERS, post_json

ORIGIN = (b"origin", b"http://testserver")


def lesson_session(client, people, seed=None, text=None):
    sid = post_json(client, "/api/sessions", {"lesson_id": people.lesson.pk}).json()["session_id"]
    post_json(client, f"/api/sessions/{sid}/set-prompt", {"prompt": people.lesson.prompt})
    body = {"token_text": text} if text else {"category": "sample", "seed": seed}
    assert post_json(client, f"/api/sessions/{sid}/append-token", body).status_code == 200
    return sid


# --------------------------------------------------------------------------- dashboard


@pytest.mark.django_db
def test_the_dashboard_shows_each_students_runs_and_the_tokens_chosen_per_step(people, client_for, engine):
    lesson_session(client_for("student"), people, text=" floor")
    lesson_session(client_for("classmate"), people, text=" floor")
    mate = client_for("classmate")
    sid = lesson_session(mate, people, text=" bed")
    post_json(mate, f"/api/sessions/{sid}/append-token", {"token_text": " and"})
    page = client_for("instructor").get(f"/classes/{people.classroom.pk}/dashboard/").content.decode()
    assert page.count('data-testid="dashboard-student"') == 2
    stu_row = page.split('data-username="stu"')[1].split("</tr>")[0]
    assert stu_row.count('data-testid="dashboard-run"') == 1
    steps = page.split(f'data-testid="lesson-steps" data-lesson-id="{people.lesson.pk}"')[1].split("</table>")[0]
    first = steps.split('data-position="0"')[1].split("</tr>")[0]
    assert 'data-token-text=" floor"' in first and "×2" in first and 'data-token-text=" bed"' in first
    assert 'data-position="1"' in steps and 'data-token-text=" and"' in steps


@pytest.mark.django_db
@pytest.mark.parametrize("who", list(VIEWERS))
def test_who_may_open_the_dashboard_and_the_live_wheel(people, client_for, who, engine):
    client = client_for(who)
    for path in ("dashboard/", "live/", "live/state/"):
        response = client.get(f"/classes/{people.classroom.pk}/{path}")
        expected = 302 if who is None else 200 if VIEWERS[who] else 404
        assert response.status_code == expected, path
    # The classmate, a member, still may not see the instructor's tools.
    for path in ("reset/", "push/", "next/", "end/"):
        assert client_for("classmate").post(f"/classes/{people.classroom.pk}/live/{path}").status_code == 404


# --------------------------------------------------------------------------- live pages


@pytest.mark.django_db
def test_opening_a_lesson_live_shows_its_first_step_and_the_models_probabilities(people, client_for, engine):
    client = client_for("instructor")
    page = client.get(f"/classes/{people.classroom.pk}/live/?lesson={people.lesson.pk}").content.decode()
    assert 'data-testid="live-class-chart"' in page
    state = json.loads(page.split('<script id="live-state" type="application/json">')[1].split("</script>")[0])
    assert state["step"] == 0 and state["text"] == "The cat sat on the" and state["threshold"] == 0.05
    assert state["distribution"]["above_threshold_tokens"]
    assert all(t["probability"] >= 0.05 for t in state["distribution"]["above_threshold_tokens"])
    # Reopening keeps the open round.
    client.get(f"/classes/{people.classroom.pk}/live/?lesson={people.lesson.pk}")
    assert LiveRound.objects.filter(classroom=people.classroom).count() == 1


@pytest.mark.django_db
def test_the_live_chart_shows_probabilities_at_the_lessons_starting_temperature(people, client_for, engine):
    """A lesson kept to 0.2-0.5 opens its students' wheels at 0.5: the projector's
    blue bars must be those probabilities, not the raw (temperature 1) ones."""
    from modelworker import client as model_client

    people.lesson.temperature_min, people.lesson.temperature_max = 0.2, 0.5
    people.lesson.save()
    teacher = client_for("instructor")
    page = teacher.get(f"/classes/{people.classroom.pk}/live/?lesson={people.lesson.pk}").content.decode()
    assert 'data-testid="live-temperature">0.50<' in page
    state = teacher.get(f"/classes/{people.classroom.pk}/live/state/").json()
    assert state["temperature"] == 0.5
    round_ = live.current_round(people.classroom)
    at = {
        t: model_client.distribution(
            round_.model_name, round_.token_ids, threshold=0.05, temperature=t, top_p=1.0, other_top_k=10
        )["above_threshold_tokens"][0]["probability"]
        for t in (0.5, 1.0)
    }
    assert at[0.5] > at[1.0] + 0.01  # a lower temperature sharpens the top token
    assert state["distribution"]["above_threshold_tokens"][0]["probability"] == pytest.approx(at[0.5])
    # Reset and next step keep the lesson's temperature.
    teacher.post(f"/classes/{people.classroom.pk}/live/reset/")
    assert teacher.get(f"/classes/{people.classroom.pk}/live/state/").json()["temperature"] == 0.5


@pytest.mark.django_db
def test_spins_accumulate_then_reset_and_next_step_start_new_rounds(people, client_for, engine):
    teacher = client_for("instructor")
    teacher.get(f"/classes/{people.classroom.pk}/live/?lesson={people.lesson.pk}")
    for name, seed in (("student", 1), ("classmate", 2)):
        lesson_session(client_for(name), people, seed=seed)
    state = teacher.get(f"/classes/{people.classroom.pk}/live/state/").json()
    assert len(state["spins"]) == 2 and {s["user"] for s in state["spins"]} == {"stu", "mate"}

    teacher.post(f"/classes/{people.classroom.pk}/live/reset/")
    state = teacher.get(f"/classes/{people.classroom.pk}/live/state/").json()
    assert state["spins"] == [] and state["step"] == 0

    top = state["distribution"]["above_threshold_tokens"][0]
    teacher.post(f"/classes/{people.classroom.pk}/live/next/", {"token_id": top["token_id"]})
    state = teacher.get(f"/classes/{people.classroom.pk}/live/state/").json()
    assert state["step"] == 1 and state["text"] == "The cat sat on the" + top["token_text"]
    assert LiveRound.objects.filter(classroom=people.classroom, ended_at__isnull=True).count() == 1


@pytest.mark.django_db
def test_a_pushed_step_opens_as_the_students_own_session_at_that_context(people, client_for, engine):
    teacher = client_for("instructor")
    teacher.get(f"/classes/{people.classroom.pk}/live/?lesson={people.lesson.pk}")
    round_ = live.current_round(people.classroom)
    new = live.next_step(round_, round_.prompt_token_ids[-1], people.instructor)  # any token will do
    teacher.post(f"/classes/{people.classroom.pk}/live/push/")
    new.refresh_from_db()
    assert new.pushed_at is not None
    student = client_for("student")
    response = student.post(f"/classes/{people.classroom.pk}/live/rounds/{new.pk}/open/")
    sid = response["Location"].split("session=")[1]
    state = student.get(f"/api/sessions/{sid}").json()
    assert state["current_text"] == new.context_text and state["generation_count"] == 0
    # A spin there lands in the pushed round.
    assert post_json(student, f"/api/sessions/{sid}/append-token", {"category": "sample"}).status_code == 200
    assert LiveSpin.objects.filter(round=new, user=people.student).count() == 1
    # Outsiders cannot open it.
    assert client_for("other_student").post(f"/classes/{people.classroom.pk}/live/rounds/{new.pk}/open/").status_code == 404


# --------------------------------------------------------------------------- the socket


async def connect(client: Client | None, classroom_id):
    from tokenwheel_site.asgi import application

    headers = [ORIGIN]
    if client is not None and "sessionid" in client.cookies:
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    communicator = WebsocketCommunicator(application, f"/ws/classes/{classroom_id}/live/", headers=headers)
    connected, code = await communicator.connect(timeout=10)
    return communicator, connected, code


async def receive_skipping(communicator, kind):
    while True:
        message = await communicator.receive_json_from(timeout=5)
        if message["type"] != kind:
            return message


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("who", list(VIEWERS))
async def test_who_may_connect_to_the_class_socket_and_who_gets_spins(people, client_for, who, engine):
    client = await sync_to_async(client_for)(who)
    round_ = await sync_to_async(live.open_round)(people.classroom, people.lesson, people.instructor)
    communicator, connected, _ = await connect(client, people.classroom.pk)
    members = {"classmate": "student", "instructor": "instructor", "staff": "staff"}
    if who not in members:
        assert not connected  # to them the class does not exist
        return
    hello = await communicator.receive_json_from(timeout=5)
    assert hello["type"] == "hello" and hello["role"] == members[who] and hello["round"]["round"] == round_.pk

    # The student spins on the class's step.
    await sync_to_async(lambda: lesson_session(client_for("student"), people, 5))()
    if who == "classmate":
        assert await communicator.receive_nothing(timeout=0.5)  # students do not see each other's spins
    else:
        spin = await communicator.receive_json_from(timeout=5)
        assert spin["type"] == "spin" and spin["user"] == "stu" and spin["round"] == round_.pk

    # Everyone in the class gets the pushed step.
    await sync_to_async(live.push)(round_)
    push = await receive_skipping(communicator, "tree")  # instructors also hear the class tree grow
    assert push["type"] == "push" and push["url"] == f"/classes/{people.classroom.pk}/live/rounds/{round_.pk}/open/"

    # The socket only sends; a message gets an error, not silence.
    await communicator.send_json_to({"type": "spin"})
    assert (await communicator.receive_json_from(timeout=5))["type"] == "error"
    await communicator.send_to(text_data="not json")
    assert (await communicator.receive_json_from(timeout=5))["code"] == "bad_json"
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_an_unknown_class_and_a_foreign_origin_are_refused(people, client_for):
    client = await sync_to_async(client_for)("staff")
    communicator, connected, _ = await connect(client, 99999)
    assert not connected
    from tokenwheel_site.asgi import application

    communicator = WebsocketCommunicator(
        application, f"/ws/classes/{people.classroom.pk}/live/", headers=[(b"origin", b"http://evil.example")]
    )
    connected, _ = await communicator.connect(timeout=5)
    assert not connected
