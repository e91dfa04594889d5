"""Who may see and who may change what: the one place that answers it.

* A class: its members (any role) and staff open it; its instructors and
  staff manage it.
* An owned object (a wheel session, a playground run: anything with
  ``owner`` and ``classroom``): its owner, the instructors of its class and
  staff see it; its owner and staff change it. An object with no owner (an
  anonymous wheel session) is reached by its unguessable id alone.

To anyone else a thing does not exist: pages raise Http404, the API answers
404 with its JSON body.
"""

from __future__ import annotations

from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404

from .models import Classroom, Lesson, Membership

STUDENT = Membership.STUDENT
INSTRUCTOR = Membership.INSTRUCTOR
STAFF = "staff"
FORMER = "former"  # removed from the class: keeps their runs, may not generate there


def _signed_in(user) -> bool:
    return bool(getattr(user, "is_authenticated", False))


# --------------------------------------------------------------------------- classes


def membership_role(user, classroom_id) -> str | None:
    """student / instructor for a member of the class, else None."""
    if not _signed_in(user) or classroom_id is None:
        return None
    return Membership.objects.filter(classroom_id=classroom_id, user=user).values_list("role", flat=True).first()


def role_in(user, classroom) -> str | None:
    """student / instructor (of this class) / staff, or None for an outsider."""
    role = membership_role(user, getattr(classroom, "pk", classroom))
    if role:
        return role
    return STAFF if _signed_in(user) and user.is_staff else None


def can_manage(user, classroom) -> bool:
    """Instructors of this class and staff."""
    return role_in(user, classroom) in (INSTRUCTOR, STAFF)


def classroom_for_member(user, pk) -> Classroom:
    """A class its member (any role) or staff may open."""
    classroom = get_object_or_404(Classroom, pk=pk)
    if role_in(user, classroom) is None:
        raise Http404("No such class")
    return classroom


def classroom_for_manager(user, pk) -> Classroom:
    """A class its instructors or staff may change."""
    classroom = get_object_or_404(Classroom, pk=pk)
    if not can_manage(user, classroom):
        raise Http404("No such class")
    return classroom


def lesson_in(classroom, lesson_pk) -> Lesson:
    return get_object_or_404(Lesson, pk=lesson_pk, classroom=classroom)


# --------------------------------------------------------------------------- owned objects


def can_view(user, obj) -> bool:
    owner_id = getattr(obj, "owner_id", None)
    if owner_id is None:
        return True
    if not _signed_in(user):
        return False
    if user.is_staff or owner_id == user.pk:
        return True
    return membership_role(user, getattr(obj, "classroom_id", None)) == INSTRUCTOR


def can_change(user, obj) -> bool:
    owner_id = getattr(obj, "owner_id", None)
    if owner_id is None:
        return True
    return _signed_in(user) and (owner_id == user.pk or user.is_staff)


def visible_q(user, prefix: str = "") -> Q:
    """A filter for querysets of owned objects: what ``user`` may see."""
    if not _signed_in(user):
        return Q(pk__in=[])
    if user.is_staff:
        return Q()
    taught = Membership.objects.filter(user=user, role=INSTRUCTOR).values("classroom_id")
    return Q(**{f"{prefix}owner": user}) | Q(**{f"{prefix}classroom__in": taught})


def stays_in_class(user, obj) -> bool:
    """A copy (fork) of ``obj`` made by ``user`` stays in obj's class and lesson
    when ``user`` is in that class (a member, or staff); otherwise it is the
    user's own, outside any class. The one fork rule for every tool."""
    classroom_id = getattr(obj, "classroom_id", None)
    return classroom_id is not None and role_in(user, classroom_id) is not None
