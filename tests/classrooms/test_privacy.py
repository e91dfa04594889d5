"""Student data under the school's control: download it all, delete the
account (instructors keep numbers only), purge after the retention period,
and no prompt or token in the logs."""

import datetime as dt
import io
import json
import logging

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from classrooms.models import DailyUsage, LiveRound, LiveSpin, Membership
from playground.models import PlaygroundRun
from wheel.models import TokenEvent, WheelSession

from .conftest import PASSWORD, post_json

pytestmark = pytest.mark.django_db
PROMPT = "Zanzibar quokkas hum a lullaby to the"


@pytest.fixture
def wheel_run(people, client_for, engine):
    client = client_for("student")
    sid = post_json(client, "/api/sessions", {"lesson_id": people.lesson.pk}).json()["session_id"]
    post_json(client, f"/api/sessions/{sid}/set-prompt", {"prompt": PROMPT})
    for seed in (3, 4):
        assert post_json(client, f"/api/sessions/{sid}/append-token", {"category": "sample", "seed": seed}).status_code == 200
    return WheelSession.objects.get(pk=sid)


def playground_run(owner, classroom, text="Once upon a quokka"):
    return PlaygroundRun.objects.create(
        owner=owner, classroom=classroom, title="Story", model_name="smollm2-135m", input_text=text,
        prompt_token_ids=[1, 2], tokens=[{"token_id": 5, "token": " a", "probability": 0.6, "chosen_by": "model"}],
        settings={"temperature": 1.0}, generated_text=" a",
    )


def usage(user, classroom, tokens, days_ago=0):
    return DailyUsage.objects.create(
        date=timezone.localdate() - dt.timedelta(days=days_ago), user=user, classroom=classroom,
        model_name="smollm2-135m", tool="wheel", tokens=tokens, sessions=1,
    )


# --------------------------------------------------------------------------- download


def test_a_student_downloads_everything_held_about_them_as_one_json_file(people, client_for, wheel_run):
    playground_run(people.student, people.classroom)
    playground_run(people.classmate, people.classroom, text="the classmate's own words")
    usage(people.student, people.classroom, 42)

    response = client_for("student").get("/accounts/data.json")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"] == 'attachment; filename="token-wheel-stu-data.json"'
    data = json.loads(response.content)

    assert data["account"]["username"] == "stu" and data["account"]["email"] == "stu@example.com"
    assert data["classes"] == [{"classroom": "Period 3", "role": "student", "joined_at": data["classes"][0]["joined_at"]}]
    (session,) = data["runs"]["wheel"]
    assert session["current_text"].startswith(PROMPT)
    stored = list(TokenEvent.objects.filter(session=wheel_run, undone_at__isnull=True).order_by("position"))
    assert [t["token_id"] for t in session["token_history"]] == [e.token_id for e in stored]
    (run,) = data["runs"]["playground"]
    assert run["input_text"] == "Once upon a quokka"
    # Every usage row of theirs (the two spins were metered too), and only theirs.
    assert sorted(u["tokens"] for u in data["usage"]) == sorted(
        DailyUsage.objects.filter(user=people.student).values_list("tokens", flat=True)
    )
    assert 42 in [u["tokens"] for u in data["usage"]] and {u["classroom__name"] for u in data["usage"]} == {"Period 3"}
    assert "the classmate's own words" not in response.content.decode()


def test_the_download_needs_a_signed_in_user():
    response = Client().get("/accounts/data.json")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_account_page_links_to_the_download_and_the_deletion(client_for):
    page = client_for("student").get("/accounts/password_change/").content.decode()
    assert 'href="/accounts/data.json"' in page and 'href="/accounts/delete/"' in page


# --------------------------------------------------------------------------- delete


def test_deleting_an_account_takes_its_runs_and_leaves_instructors_numbers_only(people, client_for, wheel_run):
    playground_run(people.student, people.classroom)
    usage(people.student, people.classroom, 40)
    usage(people.student, None, 5)  # outside any class: nobody's totals need it
    round_ = LiveRound.objects.create(classroom=people.classroom, lesson=people.lesson, model_name="smollm2-135m")
    LiveSpin.objects.create(round=round_, user=people.student, token_id=5, token_text=" mat", probability=0.3)
    in_class = DailyUsage.objects.filter(user=people.student, classroom=people.classroom)
    tokens, runs = sum(u.tokens for u in in_class), sum(u.sessions for u in in_class)
    assert tokens >= 40
    student = client_for("student")

    wrong = student.post("/accounts/delete/", {"password": "not-it"})
    assert wrong.status_code == 200 and "That is not your password: nothing was deleted." in wrong.content.decode()
    assert WheelSession.objects.filter(owner=people.student).exists()

    done = student.post("/accounts/delete/", {"password": PASSWORD}, follow=True)
    assert "Your account and everything in it were deleted." in done.content.decode()
    assert not type(people.student).objects.filter(username="stu").exists()
    assert "_auth_user_id" not in student.session
    assert not WheelSession.objects.filter(pk=wheel_run.pk).exists()
    assert not TokenEvent.objects.filter(session_id=wheel_run.pk).exists()
    assert not PlaygroundRun.objects.filter(input_text="Once upon a quokka").exists()
    assert not Membership.objects.filter(classroom=people.classroom, role="student", user__username="stu").exists()
    # The class's usage rows stay, without the student; the one outside any class is gone.
    assert set(DailyUsage.objects.values_list("user", "classroom")) == {(None, people.classroom.pk)}
    assert sum(DailyUsage.objects.values_list("tokens", flat=True)) == tokens
    assert LiveSpin.objects.get().user is None  # the class's live chart keeps its count

    dashboard = client_for("instructor").get(f"/classes/{people.classroom.pk}/dashboard/").content.decode()
    assert f"Deleted students: {tokens} tokens in {runs} run" in dashboard
    assert ">stu<" not in dashboard and PROMPT not in dashboard


# --------------------------------------------------------------------------- retention


def test_purge_deletes_what_is_older_than_the_retention_period_and_keeps_the_rest(people, settings):
    settings.PRIVACY = {"RETENTION_DAYS": 30}
    old, recent = timezone.now() - dt.timedelta(days=31), timezone.now() - dt.timedelta(days=29)
    old_anonymous = WheelSession.objects.create(model_name="smollm2-135m", initial_prompt="old", created_at=old)
    recent_anonymous = WheelSession.objects.create(model_name="smollm2-135m", initial_prompt="new", created_at=recent)
    old_owned = WheelSession.objects.create(owner=people.student, model_name="smollm2-135m", created_at=old)
    usage(people.student, people.classroom, 1, days_ago=31)
    kept_usage = usage(people.student, people.classroom, 2, days_ago=29)
    usage(None, people.classroom, 3, days_ago=31)  # a deleted student's, anonymised
    round_ = LiveRound.objects.create(classroom=people.classroom, lesson=people.lesson, model_name="smollm2-135m")
    LiveSpin.objects.create(round=round_, user=None, token_id=1, token_text=" a", probability=0.1, created_at=old)
    kept_spin = LiveSpin.objects.create(round=round_, user=people.classmate, token_id=1, token_text=" a",
                                        probability=0.1, created_at=old)

    out = io.StringIO()
    call_command("purge_student_data", stdout=out)

    assert list(WheelSession.objects.filter(owner__isnull=True)) == [recent_anonymous]
    assert not WheelSession.objects.filter(pk=old_anonymous.pk).exists()
    assert WheelSession.objects.filter(pk=old_owned.pk).exists()  # a user's own run is theirs to delete
    assert list(DailyUsage.objects.all()) == [kept_usage]
    assert list(LiveSpin.objects.all()) == [kept_spin]
    assert "older than 30 days" in out.getvalue()


# --------------------------------------------------------------------------- logs


@pytest.fixture
def every_log(caplog):
    """caplog, also fed by the loggers settings.LOGGING keeps from propagating to the root."""
    caplog.set_level(logging.DEBUG)
    closed = [logger for logger in logging.root.manager.loggerDict.values()
              if isinstance(logger, logging.Logger) and not logger.propagate]
    for logger in closed:
        logger.addHandler(caplog.handler)
    levels = {logger: logger.level for logger in closed}
    for logger in closed:
        logger.setLevel(logging.DEBUG)
    yield caplog
    for logger in closed:
        logger.removeHandler(caplog.handler)
        logger.setLevel(levels[logger])


def test_no_prompt_or_token_reaches_any_log(people, client_for, every_log, engine):
    caplog = every_log
    client = client_for("student")
    sid = post_json(client, "/api/sessions", {}).json()["session_id"]
    post_json(client, f"/api/sessions/{sid}/set-prompt", {"prompt": PROMPT})
    tokens = [post_json(client, f"/api/sessions/{sid}/append-token", {"category": "sample", "seed": s}).json()
              for s in (1, 2, 3)]
    client.get(f"/api/sessions/{sid}/next-token-probs")
    client.get(f"/api/sessions/{sid}/export")
    post_json(client, f"/api/sessions/{sid}/set-prompt", {"prompt": "lone \ud800 surrogate " + PROMPT})
    post_json(client, "/api/generate-next-token", {"text": PROMPT, "greedy": True})
    client.get("/accounts/data.json")
    Client(REMOTE_ADDR="10.1.1.1").post("/accounts/login/", {"username": "stu", "password": PROMPT})

    texts = [t["appended_token"]["token_text"].strip() for t in tokens]
    assert all(texts) and caplog.records, "the flow logged nothing at all: the test would prove nothing"
    assert any(r.name.startswith("axes") for r in caplog.records)  # the loggers that do not propagate are heard too
    logged = "\n".join(r.getMessage() + (logging.Formatter().formatException(r.exc_info) if r.exc_info else "")
                       for r in caplog.records)
    assert "quokka" not in logged.lower()
    for text in texts:
        assert f"{text!r}" not in logged and f'"{text}"' not in logged


def test_a_logged_exception_keeps_its_traceback_but_not_its_message(settings):
    handler = logging.getLogger("playground").handlers[0]  # the console handler settings.LOGGING configures
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        try:
            try:
                raise KeyError(PROMPT)
            except KeyError as exc:
                raise ValueError(f"could not read {PROMPT!r}") from exc
        except ValueError:
            logging.getLogger("playground").exception("playground message %s failed", "start")
    finally:
        handler.setStream(previous)
    written = stream.getvalue()
    assert "playground message start failed" in written
    assert "Traceback (most recent call last)" in written and "ValueError" in written and "KeyError" in written
    assert "test_privacy.py" in written  # where it happened
    assert "quokka" not in written.lower()


def test_the_download_holds_undone_tokens_too(people, client_for, wheel_run):
    client = client_for("student")
    assert post_json(client, f"/api/sessions/{wheel_run.pk}/undo").status_code == 200
    data = json.loads(client.get("/accounts/data.json").content)
    (session,) = data["runs"]["wheel"]
    assert len(session["token_history"]) == 1
    held = session["all_token_events"]
    assert len(held) == 2 and [e["removed_by"] for e in held] == ["", "undo"]
