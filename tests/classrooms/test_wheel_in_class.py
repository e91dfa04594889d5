"""The wheel API in a class: the class's settings hold on the server, quotas,
usage counters, the live round, and who may see (and change) a session."""

import pytest
from django.test import Client
from django.utils import timezone

from classrooms import live
from classrooms.models import DailyUsage, LiveSpin
from wheel.models import WheelSession

from .conftest import VIEWERS, post_json

pytestmark = pytest.mark.django_db


@pytest.fixture
def student(people, client_for, engine):
    client = client_for("student")
    client.post("/classes/act/", {"classroom": people.classroom.pk})
    return client


def new_session(client, **body):
    response = post_json(client, "/api/sessions", body)
    assert response.status_code == 201, response.content
    sid = response.json()["session_id"]
    if body.get("prompt", True):
        assert post_json(client, f"/api/sessions/{sid}/set-prompt", {"prompt": "The cat sat on the"}).status_code == 200
    return sid


def test_a_session_made_in_the_header_class_belongs_to_the_class(people, student):
    sid = new_session(student)
    session = WheelSession.objects.get(pk=sid)
    assert session.classroom == people.classroom and session.owner == people.student and session.lesson is None


def test_a_session_from_a_lesson_uses_the_lessons_threshold_for_every_segment(people, student):
    sid = new_session(student, lesson_id=people.lesson.pk)
    assert WheelSession.objects.get(pk=sid).lesson == people.lesson
    dist = student.get(f"/api/sessions/{sid}/next-token-probs").json()
    assert dist["threshold"] == 0.05
    assert dist["above_threshold_tokens"], "the cat sat on the... has likely tokens"
    assert all(t["probability"] >= 0.05 for t in dist["above_threshold_tokens"])
    assert student.get(f"/api/sessions/{sid}").json()["params"]["threshold"] == 0.05


def test_explicit_personal_sessions_ignore_the_header_class(people, student):
    sid = new_session(student, classroom_id=None)
    assert WheelSession.objects.get(pk=sid).classroom is None


def test_a_lesson_of_another_class_is_not_found(people, student):
    other = people.other_class.lessons.create(title="x", prompt="Hello")
    response = post_json(student, "/api/sessions", {"lesson_id": other.pk})
    assert response.status_code == 404
    assert response.json()["error"] == "Lesson not found"


def test_a_locked_threshold_is_enforced_on_the_server(people, student):
    people.lesson.students_may_change_threshold = False
    people.lesson.save()
    sid = new_session(student, lesson_id=people.lesson.pk)
    response = student.get(f"/api/sessions/{sid}/next-token-probs?threshold=0.01")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "threshold_locked" and "5%" in body["message"]
    append = post_json(student, f"/api/sessions/{sid}/append-token", {"category": "sample", "threshold": 0.01})
    assert append.status_code == 400 and append.json()["code"] == "threshold_locked"
    spin = post_json(student, f"/api/sessions/{sid}/append-token", {"category": "sample", "seed": 1})
    assert spin.status_code == 200


def test_temperature_top_p_and_models_are_enforced_on_the_server(people, student):
    c = people.classroom
    c.temperature_min, c.temperature_max, c.top_p_enabled, c.allowed_models = 0.5, 1.5, False, ["smollm2-135m"]
    c.save()
    assert post_json(student, "/api/sessions", {"model_name": "gpt2"}).json()["code"] == "model_not_allowed"
    sid = new_session(student)
    hot = student.get(f"/api/sessions/{sid}/next-token-probs?temperature=3")
    assert hot.status_code == 400 and hot.json()["code"] == "temperature_out_of_range"
    assert student.get(f"/api/sessions/{sid}/next-token-probs?top_p=0.5").json()["code"] == "top_p_disabled"
    compare = post_json(student, f"/api/sessions/{sid}/compare", {"n": 2, "temperature": 2.0})
    assert compare.status_code == 400
    assert student.get(f"/api/sessions/{sid}/next-token-probs?temperature=1.5").status_code == 200


def test_the_daily_quota_returns_429_and_is_counted(people, student):
    people.classroom.daily_token_quota = 2
    people.classroom.save()
    sid = new_session(student)
    for _ in range(2):
        assert post_json(student, f"/api/sessions/{sid}/append-token", {"category": "sample"}).status_code == 200
    refused = post_json(student, f"/api/sessions/{sid}/append-token", {"category": "sample"})
    assert refused.status_code == 429
    assert refused.json()["error"] == "Quota exceeded" and refused.json()["code"] == "quota_exceeded"
    assert WheelSession.objects.get(pk=sid).active_events().count() == 2
    usage = DailyUsage.objects.get(user=people.student, classroom=people.classroom, tool="wheel")
    assert (usage.tokens, usage.quota_hits, usage.sessions) == (2, 1, 1)


def test_usage_counts_sessions_tokens_other_picks_and_undos(people, student):
    sid = new_session(student)
    post_json(student, f"/api/sessions/{sid}/append-token", {"category": "other"})
    post_json(student, f"/api/sessions/{sid}/undo")
    row = DailyUsage.objects.get(user=people.student, classroom=people.classroom)
    assert (row.sessions, row.tokens, row.other_picks, row.undos) == (1, 1, 1, 1)
    # Anonymous use is counted too, with no user and no class.
    anon = Client()
    asid = post_json(anon, "/api/sessions").json()["session_id"]
    post_json(anon, f"/api/sessions/{asid}/set-prompt", {"prompt": "Hello"})
    post_json(anon, f"/api/sessions/{asid}/append-token", {"category": "sample"})
    anon_row = DailyUsage.objects.get(user__isnull=True)
    assert (anon_row.sessions, anon_row.tokens, anon_row.classroom) == (1, 1, None)


def test_an_archived_class_is_read_only(people, student):
    sid = new_session(student)
    people.classroom.archived_at = timezone.now()
    people.classroom.save()
    refused = post_json(student, f"/api/sessions/{sid}/append-token", {"category": "sample"})
    assert refused.status_code == 403 and refused.json()["code"] == "class_archived"
    assert student.get(f"/api/sessions/{sid}").status_code == 200


@pytest.mark.parametrize("who", list(VIEWERS))
def test_who_may_read_a_students_session_through_the_api(people, student, client_for, who):
    sid = new_session(student)
    client = client_for(who)
    expected = 200 if VIEWERS[who] else 404
    assert client.get(f"/api/sessions/{sid}").status_code == expected
    assert client.get(f"/api/sessions/{sid}/statistics").status_code == expected
    assert client.get(f"/api/sessions/{sid}/export?format=csv").status_code == expected
    for path, body in (("undo", {}), ("append-token", {"category": "sample"}), ("set-prompt", {"prompt": "x"})):
        response = post_json(client, f"/api/sessions/{sid}/{path}", body)
        # Instructors and staff read; only the owner (and staff) change.
        allowed = who == "staff"
        assert response.status_code in ((200, 400) if allowed else (403,) if VIEWERS[who] else (404,)), (path, response.content)
    if VIEWERS[who] and who != "staff":
        assert client.delete(f"/api/sessions/{sid}").status_code == 403
        assert WheelSession.objects.filter(pk=sid).exists()


def test_a_spin_on_the_open_live_step_reaches_the_round(people, student):
    round_ = live.open_round(people.classroom, people.lesson, people.instructor)
    sid = new_session(student, lesson_id=people.lesson.pk)
    spin = post_json(student, f"/api/sessions/{sid}/append-token", {"category": "sample", "seed": 7})
    assert spin.status_code == 200
    landed = LiveSpin.objects.get(round=round_)
    assert landed.user == people.student and landed.token_id == spin.json()["appended_token"]["token_id"]
    # A second spin, now one token further on, is not on the class's step.
    post_json(student, f"/api/sessions/{sid}/append-token", {"category": "sample"})
    # A pick is not a spin.
    post_json(student, f"/api/sessions/{sid}/undo")
    post_json(student, f"/api/sessions/{sid}/undo")
    post_json(student, f"/api/sessions/{sid}/append-token", {"token_text": " floor"})
    assert LiveSpin.objects.filter(round=round_).count() == 1


def test_the_wheel_page_offers_only_what_the_class_allows(people, student):
    people.lesson.students_may_change_threshold = False
    people.lesson.save()
    sid = new_session(student, lesson_id=people.lesson.pk)
    import json
    import re

    page = student.get(f"/?session={sid}").content.decode()
    config = json.loads(re.search(r'<script id="wheel-config" type="application/json">(.*?)</script>', page, re.S).group(1))
    assert config["threshold"]["min"] == config["threshold"]["max"] == config["threshold"]["default"] == 0.05
    assert config["classroom"]["lesson_title"] == "The cat"
