"""classrooms.policy: the class's settings, held on the server."""

import pytest
from django.utils import timezone

from classrooms import access, metering, policy
from classrooms.models import DailyUsage, Membership

pytestmark = pytest.mark.django_db


def test_no_class_means_the_sites_own_limits(people):
    rules = policy.rules_for(people.student, None)
    assert not rules.in_class
    assert rules.threshold == 0.01
    params = policy.wheel_params(rules, temperature=4.5)
    assert params == {"threshold": 0.01, "temperature": 4.5, "top_p": 1.0, "other_top_k": 10}


def test_a_lesson_overrides_its_classs_settings(people):
    people.classroom.threshold = 0.02
    people.classroom.temperature_min, people.classroom.temperature_max = 0.5, 1.5
    people.classroom.save()
    rules = policy.rules_for(people.student, people.classroom, people.lesson)
    assert rules.threshold == 0.05  # the lesson's
    assert (rules.temperature_min, rules.temperature_max) == (0.5, 1.5)  # the class's
    assert rules.prompt == "The cat sat on the"
    assert rules.role == "student"


def test_outsiders_are_told_the_class_does_not_exist(people):
    with pytest.raises(policy.NotFound) as err:
        policy.rules_for(people.other_student, people.classroom)
    assert err.value.status == 404
    with pytest.raises(policy.NotFound):
        policy.resolve(people.other_instructor, lesson_id=people.lesson.pk)
    with pytest.raises(policy.NotFound):
        policy.resolve(people.student, classroom_id=people.other_class.pk)
    with pytest.raises(policy.NotFound):
        policy.resolve(people.student, classroom_id="not-a-number")


def test_a_lesson_of_another_class_is_not_found(people):
    with pytest.raises(policy.NotFound):
        policy.resolve(people.student, classroom_id=people.other_class.pk, lesson_id=people.lesson.pk)


def test_staff_are_in_every_class(people):
    rules = policy.rules_for(people.staff, people.classroom)
    assert rules.role == "staff"
    assert not rules.quota_applies


def test_a_locked_threshold_refuses_another_value_with_a_clear_message(people):
    people.lesson.students_may_change_threshold = False
    people.lesson.save()
    rules = policy.rules_for(people.student, people.classroom, people.lesson)
    assert policy.wheel_params(rules)["threshold"] == 0.05
    assert policy.wheel_params(rules, threshold="0.05")["threshold"] == 0.05
    with pytest.raises(policy.PolicyError) as err:
        policy.wheel_params(rules, threshold=0.01)
    assert err.value.code == "threshold_locked"
    assert "5%" in err.value.message
    # Instructors demonstrating are not locked.
    teacher = policy.rules_for(people.instructor, people.classroom, people.lesson)
    assert policy.wheel_params(teacher, threshold=0.01)["threshold"] == 0.01


def test_temperature_top_p_and_other_top_k_are_held_to_the_class(people):
    c = people.classroom
    c.temperature_min, c.temperature_max, c.top_p_enabled, c.other_top_k = 0.5, 1.5, False, 5
    c.save()
    rules = policy.rules_for(people.student, c)
    with pytest.raises(policy.PolicyError) as err:
        policy.wheel_params(rules, temperature=2.0)
    assert err.value.code == "temperature_out_of_range" and "0.5–1.5" in err.value.message
    with pytest.raises(policy.PolicyError) as err:
        policy.wheel_params(rules, top_p=0.9)
    assert err.value.code == "top_p_disabled"
    with pytest.raises(policy.PolicyError) as err:
        policy.wheel_params(rules, other_top_k=20)
    assert err.value.code == "other_top_k_out_of_range"
    assert policy.wheel_params(rules, temperature=1.5, top_p=1, other_top_k=3)["other_top_k"] == 3
    with pytest.raises(policy.PolicyError) as err:
        policy.wheel_params(rules, temperature="hot")
    assert err.value.code == "invalid_parameter"


def test_the_default_temperature_is_inside_the_classs_range(people):
    people.classroom.temperature_min = 1.2
    people.classroom.temperature_max = 2.0
    people.classroom.save()
    rules = policy.rules_for(people.student, people.classroom)
    assert policy.wheel_params(rules)["temperature"] == 1.2


def test_an_append_falls_back_to_the_class_when_a_remembered_value_is_no_longer_allowed(people):
    people.lesson.students_may_change_threshold = False
    people.lesson.save()
    rules = policy.rules_for(people.student, people.classroom, people.lesson)
    params = policy.merge_wheel_params(rules, sent={}, stored={"threshold": 0.01, "temperature": 0.8})
    assert params["threshold"] == 0.05
    assert params["temperature"] == 0.8
    with pytest.raises(policy.PolicyError):
        policy.merge_wheel_params(rules, sent={"threshold": 0.01}, stored={})


def test_playground_params_respect_context_window_and_max_tokens(people):
    people.classroom.context_window, people.classroom.max_tokens = 32, 50
    people.classroom.save()
    rules = policy.rules_for(people.student, people.classroom)
    assert policy.playground_params(rules) == {
        "temperature": 1.0,
        "top_p": 1.0,
        "top_k": 0,
        "context_window": 32,
        "max_tokens": 50,
    }
    # Ceilings: a larger request is cut to the class's, a smaller one is kept.
    assert policy.playground_params(rules, context_window=64, max_tokens=500)["context_window"] == 32
    assert policy.playground_params(rules, context_window=64, max_tokens=500)["max_tokens"] == 50
    assert policy.playground_params(rules, context_window=8, max_tokens=5) | {} == {
        "temperature": 1.0, "top_p": 1.0, "top_k": 0, "context_window": 8, "max_tokens": 5,
    }


def test_only_allowed_models_may_be_used(people):
    people.classroom.allowed_models = ["gpt2"]
    people.classroom.save()
    rules = policy.rules_for(people.student, people.classroom)
    assert rules.default_model == "gpt2"  # the site default is not allowed, so the first allowed one
    assert policy.check_model(rules, None) == "gpt2"
    with pytest.raises(policy.PolicyError) as err:
        policy.check_model(rules, "smollm2-135m")
    assert err.value.code == "model_not_allowed" and "gpt2" in err.value.message


def test_the_daily_quota_stops_a_student_and_counts_the_hit(people):
    people.classroom.daily_token_quota = 3
    people.classroom.save()
    rules = policy.rules_for(people.student, people.classroom)
    metering.charge(rules, people.student, "smollm2-135m", 2)
    assert metering.remaining_quota(rules, people.student) == 1
    with pytest.raises(metering.QuotaExceeded) as err:
        metering.charge(rules, people.student, "smollm2-135m", 2)
    assert err.value.status == 429
    assert "2 of 3" in err.value.message
    metering.charge(rules, people.student, "smollm2-135m", 1)
    assert metering.remaining_quota(rules, people.student) == 0
    row = DailyUsage.objects.get(user=people.student, classroom=people.classroom)
    assert (row.tokens, row.quota_hits, row.date) == (3, 1, timezone.localdate())
    # The classmate has their own quota; the instructor has none.
    metering.charge(policy.rules_for(people.classmate, people.classroom), people.classmate, "smollm2-135m", 3)
    teacher = policy.rules_for(people.instructor, people.classroom)
    metering.charge(teacher, people.instructor, "smollm2-135m", 100)
    assert metering.remaining_quota(teacher, people.instructor) is None


def test_a_quota_of_zero_means_unlimited(people):
    people.classroom.daily_token_quota = 0
    people.classroom.save()
    rules = policy.rules_for(people.student, people.classroom)
    metering.charge(rules, people.student, "m", 10_000)
    assert metering.remaining_quota(rules, people.student) is None


def test_archived_classes_and_removed_students_may_not_generate(people):
    rules = policy.rules_for(people.student, people.classroom)
    policy.check_active(rules)
    people.classroom.archived_at = timezone.now()
    people.classroom.save()
    with pytest.raises(policy.PolicyError) as err:
        policy.check_active(policy.rules_for(people.student, people.classroom))
    assert err.value.code == "class_archived" and err.value.status == 403

    people.classroom.archived_at = None
    people.classroom.save()

    class Run:  # anything with owner / classroom / lesson
        owner = people.student
        classroom = people.classroom
        lesson = None

    policy.check_active(policy.rules_for_object(Run))
    Membership.objects.filter(user=people.student, classroom=people.classroom).delete()
    with pytest.raises(policy.PolicyError) as err:
        policy.check_active(policy.rules_for_object(Run))
    assert err.value.code == "not_in_class"


def test_can_view_follows_the_access_rule(people):
    from .conftest import VIEWERS

    class Run:
        owner_id = people.student.pk
        classroom_id = people.classroom.pk

    from django.contrib.auth.models import AnonymousUser

    assert access.can_view(people.student, Run)
    for name, allowed in VIEWERS.items():
        user = AnonymousUser() if name is None else getattr(people, name)
        assert access.can_view(user, Run) is allowed, name
    assert access.can_change(people.student, Run)
    assert not access.can_change(people.instructor, Run)


def test_start_uses_the_class_picked_in_the_header_unless_told_otherwise(people, rf):
    from django.contrib.sessions.backends.db import SessionStore

    request = rf.get("/")
    request.user = people.student
    request.session = SessionStore()
    policy.set_acting_classroom(request, people.classroom)
    classroom, lesson, rules = policy.start(people.student, request=request)
    assert classroom == people.classroom and lesson is None and rules.in_class
    classroom, _, rules = policy.start(people.student, request=request, classroom_id=None)
    assert classroom is None and not rules.in_class
    classroom, lesson, _ = policy.start(people.student, request=request, lesson_id=people.lesson.pk)
    assert (classroom, lesson) == (people.classroom, people.lesson)
    # A class the user has left is no longer "acting".
    Membership.objects.filter(user=people.student, classroom=people.classroom).delete()
    assert policy.acting_classroom(request, people.student) is None
