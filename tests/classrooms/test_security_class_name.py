"""A class name that is too long is refused with the limit, not "needs a name"."""

import pytest

from classrooms.models import Classroom

pytestmark = pytest.mark.django_db


def flashes(response):
    return [str(m) for m in response.context["messages"]]


def test_a_class_name_over_120_characters_is_refused_with_the_limit(client_for):
    response = client_for("instructor").post("/classes/new/", {"name": "B" * 121, "description": ""}, follow=True)
    assert flashes(response) == ["A class name can be at most 120 characters (this one has 121)."]
    assert not Classroom.objects.filter(name__startswith="BBBB").exists()


def test_an_empty_class_name_still_says_a_class_needs_a_name(client_for):
    response = client_for("instructor").post("/classes/new/", {"name": "", "description": ""}, follow=True)
    assert flashes(response) == ["A class needs a name."]


def test_a_name_of_exactly_120_characters_is_taken(client_for):
    client_for("instructor").post("/classes/new/", {"name": "C" * 120, "description": ""})
    assert Classroom.objects.filter(name="C" * 120).exists()
