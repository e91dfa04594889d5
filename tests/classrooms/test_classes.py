"""Classes: create, join with a code, roster, remove, archive, settings, lessons,
the header's class picker, and who may open which page."""

import pytest
from django.test import Client
from django.utils import timezone

from classrooms import access, policy
from classrooms.models import CODE_ALPHABET, Classroom, Lesson, Membership

from .conftest import VIEWERS

pytestmark = pytest.mark.django_db


def test_an_instructor_creates_a_class_with_a_short_unambiguous_join_code(people, client_for):
    client = client_for("instructor")
    response = client.post("/classes/new/", {"name": "Biology 101", "description": ""})
    classroom = Classroom.objects.get(name="Biology 101")
    assert response["Location"] == f"/classes/{classroom.pk}/"
    assert len(classroom.join_code) == 6 and set(classroom.join_code) <= set(CODE_ALPHABET)
    assert not set(classroom.join_code) & set("O0I1L")
    assert access.role_in(people.instructor, classroom) == "instructor"
    page = client.get(response["Location"])
    assert f'data-testid="join-code">{classroom.join_code}<'.encode() in page.content
    # The new class is the one the header now acts in.
    assert client.session[policy.ACTING_SESSION_KEY] == classroom.pk


def test_students_may_not_create_classes(people, client_for):
    response = client_for("student").post("/classes/new/", {"name": "Mine"})
    assert response.status_code == 403
    assert not Classroom.objects.filter(name="Mine").exists()


def test_a_student_joins_with_the_code_typed_loosely_and_can_be_in_several_classes(people, client_for):
    client = client_for("student")
    response = client.post("/classes/join/", {"code": " myc-4rd "})
    assert response.status_code == 302
    assert Membership.objects.filter(user=people.student).count() == 2
    assert client.session[policy.ACTING_SESSION_KEY] == people.other_class.pk
    again = client.post("/classes/join/", {"code": "MYC4RD"}, follow=True)
    assert b"already in" in again.content
    listing = client.get("/classes/")
    assert b"Period 3" in listing.content and b"Period 5" in listing.content


def test_a_wrong_code_says_so(people, client_for):
    response = client_for("student").post("/classes/join/", {"code": "WWWWWW"})
    assert response.status_code == 200 and b"No class has this code" in response.content


def test_regenerating_the_code_retires_the_old_one(people, client_for):
    old = people.classroom.join_code
    client_for("instructor").post(f"/classes/{people.classroom.pk}/regenerate-code/")
    people.classroom.refresh_from_db()
    assert people.classroom.join_code != old
    response = client_for("other_student").post("/classes/join/", {"code": old})
    assert b"No class has this code" in response.content
    assert client_for("other_student").post("/classes/join/", {"code": people.classroom.join_code}).status_code == 302


def test_the_roster_lists_students_and_the_instructor_removes_one(people, client_for):
    client = client_for("instructor")
    page = client.get(f"/classes/{people.classroom.pk}/")
    assert page.content.count(b'data-testid="roster-row"') == 2
    membership = Membership.objects.get(user=people.classmate, classroom=people.classroom)
    client.post(f"/classes/{people.classroom.pk}/members/{membership.pk}/remove/")
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert client_for("classmate").get(f"/classes/{people.classroom.pk}/").status_code == 404
    # An instructor cannot be "removed" as a student, and another class's instructor cannot remove anyone.
    mine = Membership.objects.get(user=people.instructor, classroom=people.classroom)
    assert client.post(f"/classes/{people.classroom.pk}/members/{mine.pk}/remove/").status_code == 404
    student = Membership.objects.get(user=people.student, classroom=people.classroom)
    assert client_for("other_instructor").post(f"/classes/{people.classroom.pk}/members/{student.pk}/remove/").status_code == 404
    assert Membership.objects.filter(pk=student.pk).exists()


def test_a_student_leaves_a_class(people, client_for):
    client = client_for("student")
    client.post("/classes/act/", {"classroom": people.classroom.pk})
    client.post(f"/classes/{people.classroom.pk}/leave/")
    assert not Membership.objects.filter(user=people.student, classroom=people.classroom).exists()
    assert policy.ACTING_SESSION_KEY not in client.session


def test_archiving_stops_joining_and_hides_the_class_from_the_picker(people, client_for):
    client_for("instructor").post(f"/classes/{people.classroom.pk}/archive/")
    people.classroom.refresh_from_db()
    assert people.classroom.archived
    response = client_for("other_student").post("/classes/join/", {"code": people.classroom.join_code})
    assert b"archived" in response.content
    page = client_for("student").get("/classes/")
    picker = page.content.split(b'data-testid="class-picker"')[1].split(b"</select>")[0]
    assert b"Period 3" not in picker
    # ...and it can be made active again.
    client_for("instructor").post(f"/classes/{people.classroom.pk}/archive/")
    people.classroom.refresh_from_db()
    assert not people.classroom.archived


def test_the_header_class_picker_sets_the_acting_class(people, client_for):
    client = client_for("student")
    page = client.get("/classes/")
    assert b'data-testid="class-picker"' in page.content
    response = client.post("/classes/act/", {"classroom": people.classroom.pk, "next": "/runs/"})
    assert response["Location"] == "/runs/"
    assert client.session[policy.ACTING_SESSION_KEY] == people.classroom.pk
    selected = client.get("/classes/").content.decode()
    assert f'<option value="{people.classroom.pk}" selected>' in selected
    client.post("/classes/act/", {"classroom": ""})
    assert policy.ACTING_SESSION_KEY not in client.session
    # A class one is not in cannot be picked; an unsafe next is ignored.
    assert client.post("/classes/act/", {"classroom": people.other_class.pk}).status_code == 404
    assert client.post("/classes/act/", {"classroom": "", "next": "https://evil.example/"})["Location"] == "/"


def test_settings_are_saved_and_validated(people, client_for):
    client = client_for("instructor")
    url = f"/classes/{people.classroom.pk}/settings/"
    assert client.get(url).status_code == 200
    data = {
        "name": "Period 3",
        "description": "",
        "allowed_models": ["smollm2-135m"],
        "default_model": "smollm2-135m",
        "threshold_percent": "5",
        "temperature_min": "0.5",
        "temperature_max": "1.5",
        "other_top_k": "5",
        "context_window": "32",
        "max_tokens": "100",
        "daily_token_quota": "300",
    }  # unchecked boxes: students may not change the threshold; no top-p
    assert client.post(url, data).status_code == 302
    c = Classroom.objects.get(pk=people.classroom.pk)
    assert c.threshold == pytest.approx(0.05)
    assert (c.students_may_change_threshold, c.top_p_enabled) == (False, False)
    assert (c.temperature_min, c.temperature_max, c.other_top_k, c.context_window, c.max_tokens, c.daily_token_quota) == (
        0.5, 1.5, 5, 32, 100, 300
    )
    assert c.allowed_models == ["smollm2-135m"]
    bad = client.post(url, {**data, "default_model": "gpt2", "temperature_min": "2", "temperature_max": "1"})
    assert bad.status_code == 200
    assert b"The default model must be one of the allowed models" in bad.content
    assert b"at least the lowest" in bad.content


def test_lessons_are_written_edited_and_deleted_by_the_instructor(people, client_for):
    client = client_for("instructor")
    base = f"/classes/{people.classroom.pk}/lessons/"
    response = client.post(
        base + "new/",
        {"title": "Once upon", "prompt": "Once upon a time", "order": "2", "threshold_percent": "5",
         "students_may_change_threshold": "false", "top_p_enabled": "unknown"},
    )
    assert response.status_code == 302
    lesson = Lesson.objects.get(title="Once upon")
    assert lesson.threshold == pytest.approx(0.05)
    assert lesson.students_may_change_threshold is False and lesson.top_p_enabled is None
    client.post(base + f"{lesson.pk}/edit/", {"title": "Once upon a time", "prompt": "Once upon a time", "order": "2"})
    lesson.refresh_from_db()
    assert lesson.title == "Once upon a time" and lesson.threshold is None
    assert client_for("student").post(base + f"{lesson.pk}/delete/").status_code == 404
    client.post(base + f"{lesson.pk}/delete/")
    assert not Lesson.objects.filter(pk=lesson.pk).exists()


@pytest.mark.parametrize("who", list(VIEWERS))
def test_who_may_open_the_class_page(people, client_for, who):
    response = client_for(who).get(f"/classes/{people.classroom.pk}/")
    if who is None:
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    elif who in ("classmate", "instructor", "staff"):
        assert response.status_code == 200
        assert (b'data-testid="join-code"' in response.content) == (who != "classmate")
    else:
        assert response.status_code == 404


@pytest.mark.parametrize("who", list(VIEWERS))
def test_who_may_change_the_class(people, client_for, who):
    response = client_for(who).get(f"/classes/{people.classroom.pk}/settings/")
    expected = {None: 302, "instructor": 200, "staff": 200}.get(who, 404)
    assert response.status_code == expected


def test_a_student_sees_the_lessons_settings_and_quota_left(people, client_for):
    people.classroom.daily_token_quota = 50
    people.classroom.save()
    page = client_for("student").get(f"/classes/{people.classroom.pk}/")
    assert b'data-testid="lesson-start-wheel"' in page.content
    assert b'data-testid="quota-remaining"' in page.content and b"<strong>50</strong>" in page.content
    assert b'data-testid="roster"' not in page.content
