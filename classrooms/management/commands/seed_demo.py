"""Seed a demo instructor, a demo student and a demo class with two lessons.

Idempotent: run it on every `make run`. Existing objects are kept as they
are (a changed password is not reset); missing ones are created.
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from classrooms.models import Classroom, InstructorRole, Lesson, Membership

INSTRUCTOR = ("demo-teacher", "wheel-teacher-2024", "teacher@example.com")
STUDENT = ("demo-student", "wheel-student-2024", "student@example.com")
CLASS_NAME = "Demo class: how models pick the next token"
JOIN_CODE = "TEACH7"
LESSONS = [
    {
        "title": "The cat sat on the…",
        "prompt": "The cat sat on the",
        "instructions": "Spin five times and undo each time. Which words keep coming back? How often does Other win?",
        "threshold": 0.05,
        "order": 1,
    },
    {
        "title": "Once upon a time (hot and cold)",
        "prompt": "Once upon a time, there was a",
        "instructions": "Try the lowest and the highest temperature. What happens to the wheel?",
        "threshold": None,
        "temperature_min": 0.3,
        "temperature_max": 2.0,
        "order": 2,
    },
]


class Command(BaseCommand):
    help = "Create (if missing) a demo instructor, a demo student and a demo class with two lessons."

    def _user(self, username, password, email):
        User = get_user_model()
        user, created = User.objects.get_or_create(username=username, defaults={"email": email})
        if created:
            user.set_password(password)
            user.save(update_fields=["password"])
        return user, created

    @transaction.atomic
    def handle(self, *args, **options):
        teacher, t_new = self._user(*INSTRUCTOR)
        InstructorRole.objects.get_or_create(user=teacher)
        student, s_new = self._user(*STUDENT)

        classroom = Classroom.objects.filter(name=CLASS_NAME, created_by=teacher).first()
        c_new = classroom is None
        if c_new:
            code = JOIN_CODE if not Classroom.objects.filter(join_code=JOIN_CODE).exists() else None
            classroom = Classroom(name=CLASS_NAME, created_by=teacher, description="Seeded by manage.py seed_demo.")
            if code:
                classroom.join_code = code
            classroom.save()
        Membership.objects.get_or_create(classroom=classroom, user=teacher, defaults={"role": Membership.INSTRUCTOR})
        Membership.objects.get_or_create(classroom=classroom, user=student, defaults={"role": Membership.STUDENT})
        for spec in LESSONS:
            spec = dict(spec)
            title = spec.pop("title")
            Lesson.objects.get_or_create(classroom=classroom, title=title, defaults=spec)

        def state(user, password, new):
            if new:
                return "created"
            if user.check_password(password):
                return "already there"
            return "already there; its password was changed since, so this one no longer works"

        w = self.stdout.write
        w("")
        w("  Token Wheel demo accounts")
        w(f"    instructor: {INSTRUCTOR[0]} / {INSTRUCTOR[1]}   ({state(teacher, INSTRUCTOR[1], t_new)})")
        w(f"    student:    {STUDENT[0]} / {STUDENT[1]}   ({state(student, STUDENT[1], s_new)})")
        w(f"    class:      {classroom.name!r}, join code {classroom.join_code}, "
          f"{classroom.lessons.count()} lessons ({'created' if c_new else 'already there'})")
        w("    sign in at /accounts/login/ ; staff: manage.py createsuperuser, then /usage/ and /admin/")
