"""My runs: list, rename, delete, replay step by step, fork, export; and who
may open each (owner, the class's instructors and staff; others 404)."""

import csv
import io
import json

import pytest

from playground.models import PlaygroundRun
from wheel.models import WheelSession

from .conftest import VIEWERS, post_json

pytestmark = pytest.mark.django_db


@pytest.fixture
def wheel_run(people, client_for, engine):
    """A saved wheel session of ``student`` in the class's lesson: one spin, one pick."""
    client = client_for("student")
    sid = post_json(client, "/api/sessions", {"lesson_id": people.lesson.pk}).json()["session_id"]
    post_json(client, f"/api/sessions/{sid}/set-prompt", {"prompt": "The cat sat on the"})
    post_json(client, f"/api/sessions/{sid}/append-token", {"category": "sample", "seed": 3})
    post_json(client, f"/api/sessions/{sid}/append-token", {"token_text": " and"})
    return WheelSession.objects.get(pk=sid)


@pytest.fixture
def playground_run(people):
    return PlaygroundRun.objects.create(
        owner=people.student,
        classroom=people.classroom,
        lesson=people.lesson,
        title="Story",
        model_name="smollm2-135m",
        input_text="Once upon",
        prompt_token_ids=[1, 2],
        tokens=[
            {"token_id": 5, "token": " a", "probability": 0.6, "chosen_by": "model",
             "probabilities": [{"token_id": 5, "token": " a", "prob": 0.6}, {"token_id": 6, "token": " the", "prob": 0.2}]},
            {"token_id": 7, "token": " time", "probability": 0.1, "chosen_by": "hand",
             "probabilities": [{"token_id": 8, "token": " day", "prob": 0.5}, {"token_id": 7, "token": " time", "prob": 0.1}]},
        ],
        settings={"temperature": 1.0},
        generated_text=" a time",
    )


def test_my_runs_lists_wheel_and_playground_runs_with_class_lesson_model_and_length(people, client_for, wheel_run, playground_run):
    page = client_for("student").get("/runs/").content.decode()
    assert page.count('data-testid="run-row"') == 2
    row = page.split(f'data-run-id="{wheel_run.pk}"')[1].split("</tr>")[0]
    assert "Period 3" in row and "The cat" in row and "smollm2-135m" in row and "<td>2</td>" in row
    assert 'data-kind="playground"' in page
    # Someone else's list does not show them.
    assert 'data-testid="run-row"' not in client_for("classmate").get("/runs/").content.decode()


def test_the_list_can_be_filtered_by_class(people, client_for, wheel_run, engine):
    client = client_for("student")
    post_json(client, "/api/sessions", {"classroom_id": None})
    assert client.get("/runs/").content.count(b'data-testid="run-row"') == 2
    only_class = client.get(f"/runs/?class={people.classroom.pk}").content
    assert only_class.count(b'data-testid="run-row"') == 1
    assert client.get("/runs/?class=none").content.count(b'data-testid="run-row"') == 1


def test_rename_as_a_form_and_as_json(people, client_for, wheel_run):
    client = client_for("student")
    client.post(f"/runs/wheel/{wheel_run.pk}/rename/", {"title": "  Cats  "})
    wheel_run.refresh_from_db()
    assert wheel_run.title == "Cats" and wheel_run.saved
    response = post_json(client, f"/runs/wheel/{wheel_run.pk}/rename/", {"title": "Cats, again"}, HTTP_ACCEPT="application/json")
    assert response.json() == {"kind": "wheel", "id": str(wheel_run.pk), "title": "Cats, again", "url": f"/runs/wheel/{wheel_run.pk}/"}


def test_replay_carries_each_step_with_how_it_was_chosen(people, client_for, wheel_run):
    page = client_for("student").get(f"/runs/wheel/{wheel_run.pk}/").content.decode()
    data = json.loads(page.split('<script id="run-data" type="application/json">')[1].split("</script>")[0])
    assert data["prompt"] == "The cat sat on the"
    assert [s["method"] for s in data["steps"]] == ["spun", "picked"]
    assert data["steps"][1]["token_text"] == " and"
    assert all(0 < s["probability"] <= 1 for s in data["steps"])


def test_replay_recomputes_what_the_wheel_offered_at_a_step(people, client_for, wheel_run):
    client = client_for("student")
    first = wheel_run.active_events()[0]
    offered = client.get(f"/runs/wheel/{wheel_run.pk}/steps/0/").json()
    assert offered["threshold"] == 0.05
    assert all(t["probability"] >= 0.05 for t in offered["above_threshold_tokens"])
    if first.category == "above_threshold":
        match = [t for t in offered["above_threshold_tokens"] if t["token_id"] == first.token_id]
        assert match and match[0]["probability"] == pytest.approx(first.probability, rel=1e-4)
    assert client.get(f"/runs/wheel/{wheel_run.pk}/steps/9/").status_code == 404


def test_playground_replay_shows_the_stored_top_ten(people, client_for, playground_run):
    page = client_for("student").get(f"/runs/playground/{playground_run.pk}/").content.decode()
    data = json.loads(page.split('<script id="run-data" type="application/json">')[1].split("</script>")[0])
    assert data["steps"][1]["method"] == "picked"
    assert data["steps"][1]["offered"][0] == {"token_id": 8, "token_text": " day", "probability": 0.5}


def test_fork_makes_a_copy_in_the_class_that_the_wheel_opens(people, client_for, wheel_run):
    response = client_for("student").post(f"/runs/wheel/{wheel_run.pk}/fork/")
    copy = WheelSession.objects.exclude(pk=wheel_run.pk).get(owner=people.student)
    assert response["Location"] == f"/?session={copy.pk}"
    assert copy.forked_from == wheel_run and copy.classroom == people.classroom and copy.lesson == people.lesson
    assert copy.active_events().count() == 2


def test_playground_fork_copies_the_tokens(people, client_for, playground_run):
    client_for("student").post(f"/runs/playground/{playground_run.pk}/fork/")
    copy = PlaygroundRun.objects.exclude(pk=playground_run.pk).get()
    assert copy.tokens == playground_run.tokens and copy.title == "Story (fork)"


def test_export_json_csv_and_text(people, client_for, wheel_run, playground_run):
    client = client_for("student")
    as_csv = client.get(f"/runs/wheel/{wheel_run.pk}/export/?format=csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.content.decode())))
    assert [r["method"] for r in rows] == ["spun", "picked"]
    as_json = json.loads(client.get(f"/runs/wheel/{wheel_run.pk}/export/?format=json").content)
    assert as_json["initial_prompt"] == "The cat sat on the"
    text = client.get(f"/runs/playground/{playground_run.pk}/export/?format=text")
    assert text.content.decode() == "Once upon a time"
    assert json.loads(client.get(f"/runs/playground/{playground_run.pk}/export/?format=json").content)["tokens"][1]["chosen_by"] == "hand"


def test_delete(people, client_for, wheel_run, playground_run):
    client = client_for("student")
    assert client.post(f"/runs/wheel/{wheel_run.pk}/delete/")["Location"] == "/runs/"
    assert not WheelSession.objects.filter(pk=wheel_run.pk).exists()
    client.post(f"/runs/playground/{playground_run.pk}/delete/")
    assert not PlaygroundRun.objects.filter(pk=playground_run.pk).exists()


@pytest.mark.parametrize("who", list(VIEWERS))
@pytest.mark.parametrize("kind", ["wheel", "playground"])
def test_who_may_open_a_students_run(people, client_for, wheel_run, playground_run, who, kind):
    run = wheel_run if kind == "wheel" else playground_run
    client = client_for(who)
    detail = client.get(f"/runs/{kind}/{run.pk}/")
    export = client.get(f"/runs/{kind}/{run.pk}/export/?format=json")
    if who is None:
        assert detail.status_code == 302 and export.status_code == 302  # sign in first
    elif VIEWERS[who]:
        assert detail.status_code == 200 and export.status_code == 200
        assert b'data-testid="read-only"' in detail.content  # not theirs: read-only
        assert b'data-testid="run-delete"' not in detail.content
    else:
        assert detail.status_code == 404 and export.status_code == 404
    if kind == "wheel":
        step = client.get(f"/runs/wheel/{run.pk}/steps/0/")
        assert step.status_code == (302 if who is None else 200 if VIEWERS[who] else 404)


@pytest.mark.parametrize("who", [None, "other_student", "classmate", "instructor", "other_instructor"])
def test_only_the_owner_renames_or_deletes(people, client_for, wheel_run, who):
    client = client_for(who)
    assert client.post(f"/runs/wheel/{wheel_run.pk}/rename/", {"title": "mine now"}).status_code == 404
    assert client.post(f"/runs/wheel/{wheel_run.pk}/delete/").status_code in (302, 404)
    wheel_run.refresh_from_db()
    assert wheel_run.title != "mine now"
    assert WheelSession.objects.filter(pk=wheel_run.pk).exists()


def test_staff_may_rename_and_delete(people, client_for, wheel_run):
    client = client_for("staff")
    client.post(f"/runs/wheel/{wheel_run.pk}/rename/", {"title": "moderated"})
    wheel_run.refresh_from_db()
    assert wheel_run.title == "moderated"


@pytest.mark.parametrize("who", list(VIEWERS))
def test_the_playground_runs_api_follows_the_same_rule(people, client_for, playground_run, who):
    client = client_for(who)
    expected = 200 if VIEWERS[who] else 404
    assert client.get(f"/api/playground/runs/{playground_run.pk}").status_code == expected
    assert client.get(f"/api/playground/runs/{playground_run.pk}/export?format=json").status_code == expected
    listed = client.get("/api/playground/runs")
    ids = [r["id"] for r in listed.json().get("runs", [])] if listed.status_code == 200 else []
    assert (str(playground_run.pk) in ids) == VIEWERS[who]
    deleted = client.delete(f"/api/playground/runs/{playground_run.pk}")
    assert deleted.status_code == (404 if not VIEWERS[who] else 200 if who == "staff" else 403)
