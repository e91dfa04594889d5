"""Demo accounts: only when asked for, with passwords made per install and
shown once, never under production settings, and never the README's."""

import re
import subprocess
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from classrooms.models import Classroom, Lesson, Membership

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = {"demo-teacher": "wheel-teacher-2024", "demo-student": "wheel-student-2024"}


def seed(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def printed_passwords(out: str) -> dict:
    return dict(re.findall(r"(demo-\w+) / (\S+)", out))


def test_seed_demo_makes_the_class_with_passwords_of_its_own_shown_once():
    out = seed()
    passwords = printed_passwords(out)
    assert set(passwords) == {"demo-teacher", "demo-student"}
    assert "shown only now" in out and "TEACH7" in out
    for name, password in passwords.items():
        assert password != PUBLISHED[name] and len(password) >= 16
        assert not Client().login(username=name, password=PUBLISHED[name])

    classroom = Classroom.objects.get()
    assert classroom.join_code == "TEACH7" and Lesson.objects.filter(threshold=0.05).exists()
    student, teacher = Client(), Client()
    assert student.login(username="demo-student", password=passwords["demo-student"])
    assert student.get(f"/classes/{classroom.pk}/").status_code == 200
    assert teacher.login(username="demo-teacher", password=passwords["demo-teacher"])
    assert teacher.get(f"/classes/{classroom.pk}/dashboard/").status_code == 200

    again = seed()
    assert printed_passwords(again) == {}, "a password was shown a second time"
    assert "already there" in again
    assert Classroom.objects.count() == 1 and Lesson.objects.count() == 2 and Membership.objects.count() == 2


def test_each_install_gets_different_passwords():
    first = printed_passwords(seed())
    get_user_model().objects.all().delete()
    Classroom.objects.all().delete()
    second = printed_passwords(seed())
    assert first["demo-teacher"] != second["demo-teacher"] and first["demo-student"] != second["demo-student"]


def test_a_changed_password_is_left_alone():
    seed()
    user = get_user_model().objects.get(username="demo-student")
    user.set_password(PASSWORD)
    user.save()
    seed()
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


@pytest.mark.parametrize(
    "production",
    [
        {"SESSION_COOKIE_SECURE": True},
        {"MODELWORKER_BACKEND": "channels"},
        {"DATABASE_ENGINE": "django.db.backends.postgresql"},
    ],
)
# Django warns that overriding DATABASES is risky; the command only reads the engine's name.
@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES:UserWarning")
def test_production_settings_refuse_demo_accounts(settings, production):
    if "SESSION_COOKIE_SECURE" in production:
        settings.SESSION_COOKIE_SECURE = True
    if "MODELWORKER_BACKEND" in production:
        settings.MODELWORKER = {**settings.MODELWORKER, "BACKEND": "channels"}
    if "DATABASE_ENGINE" in production:
        settings.DATABASES = {"default": {**settings.DATABASES["default"], "ENGINE": production["DATABASE_ENGINE"]}}
    with pytest.raises(CommandError, match="Refusing to create demo accounts: these are production settings"):
        seed()
    assert not get_user_model().objects.exists() and not Classroom.objects.exists()


def test_an_account_left_on_a_published_password_gets_a_new_one_and_nothing_is_created():
    User = get_user_model()
    User.objects.create_user("demo-teacher", password=PUBLISHED["demo-teacher"])
    out = seed("--secure-existing")
    new = re.search(r"its new one: (\S+)", out).group(1)
    assert not Client().login(username="demo-teacher", password=PUBLISHED["demo-teacher"])
    assert Client().login(username="demo-teacher", password=new)
    assert list(User.objects.values_list("username", flat=True)) == ["demo-teacher"]
    assert not Classroom.objects.exists()
    assert seed("--secure-existing") == ""  # nothing left to fix, nothing shown


def test_make_run_seeds_only_with_demo_1_and_the_readme_publishes_no_password():
    def run_commands(*args):
        done = subprocess.run(["make", "-n", "run", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
        return [line for line in done.stdout.splitlines() if "seed_demo" in line]

    assert [line.split("manage.py ")[1].strip() for line in run_commands()] == ["seed_demo --secure-existing"]
    assert [line.split("manage.py ")[1].strip() for line in run_commands("DEMO=1")] == ["seed_demo"]
    readme = (ROOT / "README.md").read_text()
    assert not any(password in readme for password in PUBLISHED.values())
