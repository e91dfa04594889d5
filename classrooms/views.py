"""Accounts, classes, rosters and lessons: server-rendered pages.

Each view reads: fetch (checking who may see it: others get 404), change,
save, redirect with a message.
"""

import functools

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Count, Q
from django.http import Http404, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from common.errors import AppError

from . import access, metering, policy, runkinds
from .access import classroom_for_manager, classroom_for_member, lesson_in
from .forms import (
    ClassroomCreateForm,
    ClassroomSettingsForm,
    InviteRedeemForm,
    JoinForm,
    LessonForm,
    SignUpForm,
)
from .models import Classroom, InstructorInvite, InstructorRole, Lesson, Membership, is_instructor


def _safe_next(request, default):
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return default


def _redeem(user, invite: InstructorInvite, granted_by=None):
    """Grant the instructor role with an invite, counting the use."""
    with transaction.atomic():
        invite = InstructorInvite.objects.select_for_update().get(pk=invite.pk)
        if not invite.usable:
            return False
        InstructorRole.objects.get_or_create(user=user, defaults={"invite": invite, "granted_by": granted_by})
        invite.uses += 1
        invite.save(update_fields=["uses"])
    return True


# --------------------------------------------------------------------------- accounts


def signup(request):
    if request.user.is_authenticated:
        return redirect("classrooms:list")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        invite = form.cleaned_data.get("invite_code")
        if invite is not None and _redeem(user, invite):
            messages.success(request, "Welcome! You are an instructor: create your first class below.")
        else:
            messages.success(request, "Welcome! Join a class with the code your teacher gave you.")
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect(_safe_next(request, reverse("classrooms:list")))
    return render(request, "registration/signup.html", {"form": form, "next": request.GET.get("next", "")})


@login_required
def redeem_invite(request):
    form = InviteRedeemForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if _redeem(request.user, form.cleaned_data["code"]):
            messages.success(request, "You are now an instructor: you can create classes.")
            return redirect("classrooms:list")
        form.add_error("code", "This invite code has just been used up.")
    return render(request, "classrooms/redeem_invite.html", {"form": form, "instructor": is_instructor(request.user)})


# --------------------------------------------------------------------------- classes


@login_required
def class_list(request):
    user = request.user
    memberships = (
        Membership.objects.filter(user=user)
        .select_related("classroom")
        .annotate(
            n_students=Count("classroom__memberships", filter=Q(classroom__memberships__role=Membership.STUDENT)),
            n_lessons=Count("classroom__lessons", distinct=True),
        )
        .order_by("classroom__archived_at", "classroom__name")
    )
    teaching = [m for m in memberships if m.role == Membership.INSTRUCTOR]
    studying = [m for m in memberships if m.role == Membership.STUDENT]
    return render(
        request,
        "classrooms/class_list.html",
        {
            "teaching": teaching,
            "studying": studying,
            "join_form": JoinForm(initial={"code": request.GET.get("code", "")}),
            "create_form": ClassroomCreateForm() if is_instructor(user) else None,
            "instructor": is_instructor(user),
        },
    )


@login_required
@require_POST
def class_create(request):
    if not is_instructor(request.user):
        return HttpResponseForbidden("Only instructors create classes. Ask an admin for an invite code.")
    form = ClassroomCreateForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(error for errors in form.errors.values() for error in errors))
        return redirect("classrooms:list")
    with transaction.atomic():
        classroom = form.save(commit=False)
        classroom.created_by = request.user
        classroom.save()
        Membership.objects.create(classroom=classroom, user=request.user, role=Membership.INSTRUCTOR)
    policy.set_acting_classroom(request, classroom)
    messages.success(request, f"Class “{classroom.name}” created. Give your students the join code.")
    return redirect("classrooms:detail", pk=classroom.pk)


@login_required
def class_join(request):
    form = JoinForm(request.POST or None, initial={"code": request.GET.get("code", "")})
    if request.method == "POST" and form.is_valid():
        classroom = form.cleaned_data["code"]
        membership, created = Membership.objects.get_or_create(
            classroom=classroom, user=request.user, defaults={"role": Membership.STUDENT}
        )
        policy.set_acting_classroom(request, classroom)
        if created:
            messages.success(request, f"You joined “{classroom.name}”. It is now your class in the header.")
        else:
            messages.info(request, f"You are already in “{classroom.name}”.")
        return redirect("classrooms:detail", pk=classroom.pk)
    return render(request, "classrooms/join.html", {"join_form": form})


@require_POST
def act(request):
    """The header's class picker: which class the user is working in."""
    if not request.user.is_authenticated:
        raise Http404
    raw = request.POST.get("classroom", "")
    if raw in ("", "none"):
        policy.set_acting_classroom(request, None)
    else:
        try:
            classroom = Classroom.objects.active().get(pk=int(raw), memberships__user=request.user)
        except (Classroom.DoesNotExist, ValueError):
            raise Http404("No such class") from None
        policy.set_acting_classroom(request, classroom)
    return redirect(_safe_next(request, "/"))


@login_required
def class_detail(request, pk):
    classroom = classroom_for_member(request.user, pk)
    manage = access.can_manage(request.user, classroom)
    lessons = list(classroom.lessons.all())
    context = {
        "classroom": classroom,
        "manage": manage,
        "lessons": lessons,
        "rules": policy.build_rules(classroom, None, policy.STUDENT),
        "join_url": request.build_absolute_uri(reverse("classrooms:join") + f"?code={classroom.join_code}"),
    }
    if manage:
        context["students"] = classroom.students()
        context["instructors"] = classroom.instructors()
    else:
        rules = policy.rules_for(request.user, classroom)
        context["remaining"] = metering.remaining_quota(rules, request.user)
    return render(request, "classrooms/class_detail.html", context)


@login_required
def class_settings(request, pk):
    classroom = classroom_for_manager(request.user, pk)
    form = ClassroomSettingsForm(request.POST or None, instance=classroom)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Settings saved. They apply to every request made in the class from now on.")
        return redirect("classrooms:detail", pk=classroom.pk)
    return render(request, "classrooms/class_settings.html", {"classroom": classroom, "form": form})


def _class_action(act):
    """A POST of the class's instructors and staff (anyone else 404) that
    changes it: ``act(request, classroom, ...)`` returns what it did, said on
    the class page."""

    @login_required
    @require_POST
    @functools.wraps(act)
    def view(request, pk, **kwargs):
        classroom = classroom_for_manager(request.user, pk)
        messages.success(request, act(request, classroom, **kwargs))
        return redirect("classrooms:detail", pk=classroom.pk)

    return view


@_class_action
def regenerate_code(request, classroom):
    old = classroom.join_code
    classroom.regenerate_join_code()
    return f"New join code {classroom.join_code}. The old code {old} no longer works."


@_class_action
def archive(request, classroom):
    if classroom.archived:
        classroom.archived_at = None
        done = f"“{classroom.name}” is active again."
    else:
        classroom.archived_at = timezone.now()
        done = f"“{classroom.name}” is archived: runs stay readable, nobody can generate in it."
    classroom.save(update_fields=["archived_at"])
    return done


@_class_action
def remove_member(request, classroom, membership_pk):
    membership = get_object_or_404(Membership, pk=membership_pk, classroom=classroom, role=Membership.STUDENT)
    name = membership.user.get_username()
    membership.delete()
    return f"{name} was removed from the class. Their saved runs stay theirs."


@login_required
@require_POST
def leave(request, pk):
    classroom = classroom_for_member(request.user, pk)
    membership = Membership.objects.filter(classroom=classroom, user=request.user, role=Membership.STUDENT).first()
    if membership is None:
        raise Http404
    membership.delete()
    if request.session.get(policy.ACTING_SESSION_KEY) == classroom.pk:
        policy.set_acting_classroom(request, None)
    messages.success(request, f"You left “{classroom.name}”.")
    return redirect("classrooms:list")


# --------------------------------------------------------------------------- lessons


@login_required
def lesson_edit(request, pk, lesson_pk=None):
    classroom = classroom_for_manager(request.user, pk)
    lesson = lesson_in(classroom, lesson_pk) if lesson_pk else Lesson(classroom=classroom)
    if lesson_pk is None:
        lesson.order = classroom.lessons.count() + 1
    form = LessonForm(request.POST or None, instance=lesson, classroom=classroom)
    if request.method == "POST" and form.is_valid():
        lesson = form.save()
        messages.success(request, f"Lesson “{lesson.title}” saved.")
        return redirect("classrooms:detail", pk=classroom.pk)
    return render(request, "classrooms/lesson_form.html", {"classroom": classroom, "form": form, "lesson": lesson})


@_class_action
def lesson_delete(request, classroom, lesson_pk):
    lesson = lesson_in(classroom, lesson_pk)
    title = lesson.title
    lesson.delete()
    return f"Lesson “{title}” deleted. Runs started from it are kept."


@login_required
@require_POST
def lesson_start(request, pk, lesson_pk):
    """Open a lesson in a tool (the wheel unless ``tool`` names another): the
    tool starts from the lesson's prompt and settings."""
    classroom = classroom_for_member(request.user, pk)
    lesson = lesson_in(classroom, lesson_pk)
    kind = runkinds.get(request.POST.get("tool") or "wheel")
    if kind is None or kind.start_lesson is None:
        raise Http404("No such tool")
    try:
        rules = policy.rules_for(request.user, classroom, lesson)
        policy.check_active(rules)
    except AppError as exc:
        messages.error(request, exc.message)
        return redirect("classrooms:detail", pk=classroom.pk)
    policy.set_acting_classroom(request, classroom)
    try:
        url = kind.start_lesson(request.user, classroom, lesson, rules)
    except AppError as exc:
        messages.error(request, f"The lesson could not start: {exc.message}")
        return redirect("classrooms:detail", pk=classroom.pk)
    return redirect(url)
