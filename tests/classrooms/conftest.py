"""The people every classrooms test talks about, and their class.

``people`` has: ``student`` and ``classmate`` (both in ``classroom``),
``other_student`` (in ``other_class`` only), ``instructor`` (teaches
``classroom``), ``other_instructor`` (teaches ``other_class``), ``staff``.
``client_for(name)`` gives a signed-in Django test client (None: anonymous).
"""

import json
from types import SimpleNamespace

import pytest
from django.test import Client

from classrooms.models import Classroom, InstructorRole, Lesson, Membership

PASSWORD = "a-long-test-password-42"


@pytest.fixture
def people(django_user_model):
    def user(name, **extra):
        return django_user_model.objects.create_user(name, f"{name}@example.com", PASSWORD, **extra)

    p = SimpleNamespace(
        student=user("stu"),
        classmate=user("mate"),
        other_student=user("outsider"),
        instructor=user("teach"),
        other_instructor=user("otherteach"),
        staff=user("admin", is_staff=True, is_superuser=True),
    )
    for who in (p.instructor, p.other_instructor):
        InstructorRole.objects.create(user=who)
    p.classroom = Classroom.objects.create(name="Period 3", created_by=p.instructor, join_code="KAT3PX")
    p.other_class = Classroom.objects.create(name="Period 5", created_by=p.other_instructor, join_code="MYC4RD")
    Membership.objects.create(classroom=p.classroom, user=p.instructor, role=Membership.INSTRUCTOR)
    Membership.objects.create(classroom=p.other_class, user=p.other_instructor, role=Membership.INSTRUCTOR)
    for who in (p.student, p.classmate):
        Membership.objects.create(classroom=p.classroom, user=who, role=Membership.STUDENT)
    Membership.objects.create(classroom=p.other_class, user=p.other_student, role=Membership.STUDENT)
    p.lesson = Lesson.objects.create(
        classroom=p.classroom, title="The cat", prompt="The cat sat on the", threshold=0.05, order=1
    )
    return p


@pytest.fixture
def client_for(people):
    def make(name):
        client = Client()
        if name is not None:
            client.force_login(getattr(people, name))
        return client

    return make


# Who may see an object owned by ``student`` in ``classroom`` (the access rule).
VIEWERS = {
    None: False,
    "other_student": False,
    "classmate": False,
    "instructor": True,
    "other_instructor": False,
    "staff": True,
}


def post_json(client, path, data=None, **extra):
    return client.post(path, json.dumps(data or {}), content_type="application/json", **extra)
