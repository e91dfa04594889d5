"""Fetch-and-check helpers for pages: what a user may not see does not exist (404)."""

from django.http import Http404
from django.shortcuts import get_object_or_404

from .models import Classroom, Lesson, Membership


def classroom_for_member(user, pk) -> Classroom:
    """A class its member (any role) or staff may open."""
    classroom = get_object_or_404(Classroom, pk=pk)
    if not user.is_authenticated:
        raise Http404("No such class")
    if user.is_staff or Membership.objects.filter(classroom=classroom, user=user).exists():
        return classroom
    raise Http404("No such class")


def classroom_for_manager(user, pk) -> Classroom:
    """A class its instructors or staff may change."""
    classroom = get_object_or_404(Classroom, pk=pk)
    if user.is_authenticated and classroom.can_manage(user):
        return classroom
    raise Http404("No such class")


def lesson_in(classroom, lesson_pk) -> Lesson:
    return get_object_or_404(Lesson, pk=lesson_pk, classroom=classroom)
