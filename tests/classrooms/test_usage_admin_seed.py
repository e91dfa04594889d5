"""The staff usage page and its CSV, and the admin of every model."""

import csv
import datetime as dt
import io
import json
import re

import pytest
from django.utils import timezone

from classrooms import usage
from classrooms.models import DailyUsage, InstructorInvite, LiveRound, LiveSpin

pytestmark = pytest.mark.django_db


@pytest.fixture
def some_usage(people):
    today = timezone.localdate()
    yesterday = today - dt.timedelta(days=1)
    rows = [
        (today, people.student, people.classroom, "smollm2-135m", "wheel", 10, 2, 3, 1, 0),
        (today, people.classmate, people.classroom, "smollm2-135m", "wheel", 10, 1, 1, 1, 2),
        (today, people.student, people.classroom, "gpt2", "playground", 30, 1, 0, 0, 0),
        (today, None, None, "smollm2-135m", "wheel", 5, 1, 1, 0, 0),
        (yesterday, people.other_student, people.other_class, "smollm2-135m", "wheel", 4, 1, 0, 2, 0),
    ]
    for date, user, classroom, model, tool, tokens, sessions, other, undos, hits in rows:
        DailyUsage.objects.create(
            date=date, user=user, classroom=classroom, model_name=model, tool=tool, tokens=tokens,
            sessions=sessions, other_picks=other, undos=undos, quota_hits=hits,
        )


def test_figures_per_day(people, some_usage):
    data = usage.figures(days=3)
    assert data["dates"][-1] == timezone.localdate().isoformat()
    assert data["active_users"] == [0, 1, 2]
    assert data["sessions"] == [0, 1, 5]
    assert data["tokens"] == [0, 4, 55]
    assert data["other_share"] == [None, 0.0, round(5 / 25, 4)]  # over wheel tokens
    assert data["undo_rate"] == [None, 0.5, round(2 / 25, 4)]
    assert data["quota_hits"] == [0, 0, 2]
    assert data["tokens_by_model"] == {"gpt2": [0, 0, 30], "smollm2-135m": [0, 4, 25]}
    assert data["tokens_by_class"] == {"No class": [0, 0, 5], "Period 3": [0, 0, 50], "Period 5": [0, 4, 0]}
    assert data["totals"]["active_users"] == 3 and data["totals"]["tokens"] == 59


@pytest.mark.parametrize("who,expected", [(None, 302), ("student", 404), ("instructor", 404), ("staff", 200)])
def test_the_usage_page_and_csv_are_staff_only(people, client_for, who, expected):
    client = client_for(who)
    assert client.get("/usage/").status_code == expected
    assert client.get("/usage/export.csv").status_code == expected


def test_the_usage_page_embeds_its_figures_and_draws_its_charts(people, client_for, some_usage, engine):
    page = client_for("staff").get("/usage/?days=7").content.decode()
    for chart in ("chart-activity", "chart-by-model", "chart-by-class", "chart-rates", "chart-quota", "chart-worker"):
        assert f'data-testid="{chart}"' in page
    data = json.loads(page.split('<script id="usage-data" type="application/json">')[1].split("</script>")[0])
    assert data["days"] == 7 and sum(data["tokens"]) == 59
    assert data["worker"]["available"] and data["worker"]["latency_p95_ms"] is not None
    assert 'data-testid="total-tokens">59<' in page
    assert "classrooms/usage.js" in page
    # Nothing from a CDN or any other host (not a search for "cdn": the page's
    # random CSRF token may spell it).
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', page)


def test_the_csv_has_the_same_figures(people, client_for, some_usage, engine):
    response = client_for("staff").get("/usage/export.csv?days=2")
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    today = timezone.localdate().isoformat()
    def value(figure, key=""):
        return [r["value"] for r in rows if r["figure"] == figure and r["date"] == today and r["key"] == key][0]
    assert value("tokens") == "55" and value("active_users") == "2" and value("quota_hits") == "2"
    assert value("tokens_by_model", "gpt2") == "30" and value("tokens_by_class", "Period 3") == "50"
    assert value("other_share") == "0.2"
    assert any(r["figure"] == "worker_latency_p50_ms" and r["value"] for r in rows)


def test_the_usage_page_survives_a_silent_model_worker(people, client_for, monkeypatch):
    from modelworker import client as worker

    def boom():
        raise worker.ModelError("worker_timeout", "No model worker answered within 30 s.", 503)

    monkeypatch.setattr(worker, "stats", boom)
    page = client_for("staff").get("/usage/")
    assert page.status_code == 200 and b"No model worker answered" in page.content


# --------------------------------------------------------------------------- admin


@pytest.mark.parametrize(
    "model",
    ["classroom", "membership", "lesson", "instructorinvite", "instructorrole", "liveround", "livespin", "dailyusage"],
)
def test_every_model_has_an_admin_with_search_and_filters(people, client_for, some_usage, model):
    round_ = LiveRound.objects.create(classroom=people.classroom, lesson=people.lesson, model_name="m")
    LiveSpin.objects.create(round=round_, user=people.student, token_id=1, token_text=" mat", probability=0.2)
    InstructorInvite.objects.create(note="for Rivera")
    client = client_for("staff")
    changelist = client.get(f"/admin/classrooms/{model}/?q=a")
    assert changelist.status_code == 200
    assert b'id="changelist-filter"' in changelist.content or model == "instructorrole"
    assert client.get(f"/admin/classrooms/{model}/add/").status_code == 200


def test_the_user_admin_shows_and_grants_the_instructor_role(people, client_for):
    client = client_for("staff")
    page = client.get("/admin/auth/user/?instructor=yes")
    assert b"teach" in page.content and b"mate" not in page.content
    client.post(
        "/admin/auth/user/",
        {"action": "grant_instructor", "_selected_action": [people.student.pk]},
    )
    from classrooms.models import is_instructor

    assert is_instructor(people.student)


def test_the_admin_creates_invites_and_regenerates_codes(people, client_for):
    client = client_for("staff")
    old = people.classroom.join_code
    client.post("/admin/classrooms/classroom/", {"action": "regenerate_codes", "_selected_action": [people.classroom.pk]})
    people.classroom.refresh_from_db()
    assert people.classroom.join_code != old
    client.post("/admin/classrooms/instructorinvite/add/", {"code": "abcd-efgh-jk", "note": "x", "max_uses": 1, "active": "on"})
    assert InstructorInvite.objects.get(code="ABCDEFGHJK").created_by == people.staff


# seed_demo: tests/classrooms/test_security_demo_accounts.py
