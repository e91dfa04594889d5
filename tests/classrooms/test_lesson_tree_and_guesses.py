"""The class tree (students' paths merged), the class's guesses on the live
step, and the lesson's class seed: API, access and live messages."""

import json

import pytest
from asgiref.sync import sync_to_async

from classrooms import live, tree
from classrooms.models import LiveGuess

from .conftest import VIEWERS, post_json
from .test_dashboard_live import connect, receive_skipping


def test_paths_merge_into_a_prefix_tree_with_counts_and_collapse():
    S = tree.Step
    paths = [
        ("a", [S(1, " a", 0.5, True), S(2, " b", 0.3, False)]),
        ("b", [S(1, " a", 0.5, True), S(3, " c", 0.2, False)]),
        ("c", [S(1, " a", 0.5, True), S(2, " b", 0.3, False)]),
        ("d", [S(4, " d", 0.1, False)]),
        ("e", [S(5, " e", 0.05, False)]),
    ]
    root = tree.build(paths, keep=2)
    assert root["count"] == 5
    first = root["children"][0]
    assert (first["token_id"], first["count"], first["greedy"], first["depth"]) == (1, 3, True, 1)
    assert [(c["token_id"], c["count"]) for c in first["children"]] == [(2, 2), (3, 1)]
    assert root["more"] == {"branches": 1, "count": 1}  # " d" and " e": one shown, one collapsed
    rerooted = tree.build(paths, root_path=[1], depth=1)
    assert rerooted["count"] == 3 and rerooted["path"] == [1]
    assert [c["path"] for c in rerooted["children"]] == [[1, 2], [1, 3]]
    capped = tree.build(paths, depth=1)
    assert capped["children"][0]["truncated"] and capped["children"][0]["children"] == []


def lesson_path(client, people, texts):
    sid = post_json(client, "/api/sessions", {"lesson_id": people.lesson.pk}).json()["session_id"]
    post_json(client, f"/api/sessions/{sid}/set-prompt", {"prompt": people.lesson.prompt})
    for text in texts:
        assert post_json(client, f"/api/sessions/{sid}/append-token", {"token_text": text}).status_code == 200
    return sid


@pytest.mark.django_db
def test_three_students_on_different_paths_make_three_branches(people, client_for, engine, django_user_model):
    from classrooms.models import Membership

    third = django_user_model.objects.create_user("third", "t@example.com", "a-long-test-password-42")
    Membership.objects.create(classroom=people.classroom, user=third, role=Membership.STUDENT)
    lesson_path(client_for("student"), people, [" mat", "."])
    lesson_path(client_for("classmate"), people, [" mat", " and"])
    people.third = third
    lesson_path(client_for("third"), people, [" floor"])
    url = f"/classes/{people.classroom.pk}/lessons/{people.lesson.pk}/tree.json"
    data = client_for("instructor").get(url).json()
    assert data["students"] == 3
    branches = {c["token_text"]: c for c in data["node"]["children"]}
    assert branches[" mat"]["count"] == 2 and branches[" floor"]["count"] == 1
    assert sorted(c["token_text"] for c in branches[" mat"]["children"]) == [" and", "."]
    assert all(c["probability"] > 0 for c in data["node"]["children"])
    # Re-rooting on " mat" shows only its two students.
    mat = branches[" mat"]["token_id"]
    assert client_for("instructor").get(f"{url}?root={mat}").json()["students"] == 2
    # Opening a node gives the instructor a wheel at that text.
    opened = client_for("instructor").post(
        f"/classes/{people.classroom.pk}/lessons/{people.lesson.pk}/tree/open", {"path": str(mat)}
    )
    sid = opened["Location"].split("session=")[1]
    assert client_for("instructor").get(f"/api/sessions/{sid}").json()["current_text"] == "The cat sat on the mat"
    post_json(client_for("instructor"), f"/api/sessions/{sid}/append-token", {"token_text": " again"})
    assert client_for("instructor").get(url).json()["students"] == 3  # the teacher's own paths are not the class's


@pytest.mark.django_db
@pytest.mark.parametrize("who", list(VIEWERS))
def test_only_the_class_instructors_and_staff_see_the_tree(people, client_for, who, engine):
    url = f"/classes/{people.classroom.pk}/lessons/{people.lesson.pk}/tree.json"
    response = client_for(who).get(url)
    if who in ("instructor", "staff"):
        assert response.status_code == 200
    else:
        assert response.status_code in (302, 404) and who in (None, "other_student", "classmate", "other_instructor")
        assert response.status_code == (302 if who is None else 404)


@pytest.mark.django_db
def test_a_tree_for_a_lesson_of_another_class_or_bad_input_is_a_clear_4xx(people, client_for, engine):
    teacher = client_for("other_instructor")
    assert teacher.get(f"/classes/{people.other_class.pk}/lessons/{people.lesson.pk}/tree.json").status_code == 404
    url = f"/classes/{people.classroom.pk}/lessons/{people.lesson.pk}/tree.json"
    for query in ("root=a,b", "depth=0", "depth=x", "keep=99"):
        response = client_for("instructor").get(f"{url}?{query}")
        assert response.status_code == 400 and "message" in response.json(), query


@pytest.mark.django_db(transaction=True)
async def test_the_class_guesses_on_the_live_step_reach_the_projector(people, client_for, engine):
    round_ = await sync_to_async(live.open_round)(people.classroom, people.lesson, people.instructor)
    teacher = await sync_to_async(client_for)("instructor")
    communicator, connected, _ = await connect(teacher, people.classroom.pk)
    assert connected
    await communicator.receive_json_from(timeout=5)  # hello

    def guess(name, text):
        client = client_for(name)
        sid = post_json(client, "/api/sessions", {"lesson_id": people.lesson.pk}).json()["session_id"]
        post_json(client, f"/api/sessions/{sid}/set-prompt", {"prompt": people.lesson.prompt})
        return post_json(client, f"/api/sessions/{sid}/guess", {"token_text": text})

    assert (await sync_to_async(guess)("student", " mat")).status_code == 201
    message = await receive_skipping(communicator, "tree")
    assert message["type"] == "guess" and message["user"] == "stu" and message["token_text"] == " mat"
    await sync_to_async(guess)("classmate", " floor")
    state = await sync_to_async(lambda: teacher.get(f"/classes/{people.classroom.pk}/live/state/").json())()
    summary = state["guess_summary"]
    assert summary["guessers"] == 2 and len(state["guesses"]) == 2
    assert summary["model_top"]["token_id"] == state["distribution"]["above_threshold_tokens"][0]["token_id"]
    assert await sync_to_async(LiveGuess.objects.filter(round=round_).count)() == 2
    await communicator.disconnect()


@pytest.mark.django_db
def test_a_lessons_class_seed_gives_two_students_the_same_tokens(people, client_for, engine):
    people.lesson.seed = 42
    people.lesson.save()

    def spins(name):
        client = client_for(name)
        sid = post_json(client, "/api/sessions", {"lesson_id": people.lesson.pk}).json()["session_id"]
        post_json(client, f"/api/sessions/{sid}/set-prompt", {"prompt": people.lesson.prompt})
        return [
            post_json(client, f"/api/sessions/{sid}/append-token", {"category": "sample"}).json()["appended_token"]["token_id"]
            for _ in range(4)
        ]

    assert spins("student") == spins("classmate")
    # A student may opt out of the class seed by creating the session with "seed": null.
    client = client_for("student")
    opted_out = post_json(client, "/api/sessions", {"lesson_id": people.lesson.pk, "seed": None}).json()["session_id"]
    assert client.get(f"/api/sessions/{opted_out}").json()["seed"] is None
    seeded = post_json(client, "/api/sessions", {"lesson_id": people.lesson.pk}).json()["session_id"]
    assert client.get(f"/api/sessions/{seeded}").json()["seed"] == 42
