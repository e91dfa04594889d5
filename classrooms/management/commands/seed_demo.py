"""Seed a demo instructor, a demo student and a demo class with two lessons,
only when asked (``make run DEMO=1`` or ``manage.py seed_demo``).

The two accounts get passwords made for this install, printed once, when
they are created: a teacher who serves the class on the school network
must not hand every student the instructor account. Refused under
production settings. Idempotent: existing objects are kept as they are.

``--secure-existing`` (what a plain ``make run`` does) creates nothing: it
only gives a demo account that still has a password once printed in the
README a new one, printed once.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.crypto import get_random_string

from classrooms.models import Classroom, InstructorRole, Lesson, Membership

INSTRUCTOR = ("demo-teacher", "teacher@example.com")
STUDENT = ("demo-student", "student@example.com")
# Published in earlier READMEs: an account still using one is open to anyone.
PUBLISHED_PASSWORDS = {"demo-teacher": "wheel-teacher-2024", "demo-student": "wheel-student-2024"}
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

# No 0/O, 1/l/I: a teacher reads it off the terminal.
PASSWORD_CHARS = "abcdefghjkmnpqrstuvwxyz23456789"


def new_password() -> str:
    return "-".join(get_random_string(4, PASSWORD_CHARS) for _ in range(4))


def production_reason() -> str | None:
    """Why these settings look like a production site, or None."""
    if settings.SESSION_COOKIE_SECURE:
        return "SECURE=1"
    if settings.MODELWORKER["BACKEND"] == "channels":
        return "MODELWORKER_BACKEND=channels"
    if "postgresql" in settings.DATABASES["default"]["ENGINE"]:
        return "a PostgreSQL DATABASE_URL"
    return None


class Command(BaseCommand):
    help = "Create (if missing) a demo instructor, a demo student and a demo class with two lessons (not in production)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--secure-existing",
            action="store_true",
            help="Create nothing; give demo accounts still on a published password a new one.",
        )

    def handle(self, *args, secure_existing=False, **options):
        if secure_existing:
            self._secure_existing()
            return
        reason = production_reason()
        if reason:
            raise CommandError(
                f"Refusing to create demo accounts: these are production settings ({reason}). "
                "Create real accounts (manage.py createsuperuser, then sign-up and instructor invites)."
            )
        self._seed()

    def _secure_existing(self):
        User = get_user_model()
        for user in User.objects.filter(username__in=PUBLISHED_PASSWORDS):
            if user.check_password(PUBLISHED_PASSWORDS[user.username]):
                password = new_password()
                user.set_password(password)
                user.save(update_fields=["password"])
                self.stdout.write(
                    f"  {user.username} had the password published in the README; its new one: {password}"
                    "  (shown once)"
                )

    def _user(self, username, email):
        """The user and, when it was created just now, its password (else None)."""
        user, created = get_user_model().objects.get_or_create(username=username, defaults={"email": email})
        if not created:
            return user, None
        password = new_password()
        user.set_password(password)
        user.save(update_fields=["password"])
        return user, password

    @transaction.atomic
    def _seed(self):
        teacher, teacher_password = self._user(*INSTRUCTOR)
        InstructorRole.objects.get_or_create(user=teacher)
        student, student_password = self._user(*STUDENT)

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
        self._secure_existing()

        def sign_in(user, password):
            if password:
                return f"{user.username} / {password}   (created; this password is shown only now)"
            return f"{user.username}   (already there, with the password shown when it was created)"

        w = self.stdout.write
        w("")
        w("  Token Wheel demo accounts")
        w(f"    instructor: {sign_in(teacher, teacher_password)}")
        w(f"    student:    {sign_in(student, student_password)}")
        w(f"    class:      {classroom.name!r}, join code {classroom.join_code}, "
          f"{classroom.lessons.count()} lessons ({'created' if c_new else 'already there'})")
        w("    sign in at /accounts/login/ ; forgot one? manage.py changepassword demo-teacher")
        w("    staff: manage.py createsuperuser, then /usage/ and /admin/")
