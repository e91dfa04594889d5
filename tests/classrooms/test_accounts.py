"""Sign up, sign in, sign out, password change and reset, instructor invites."""

import os
import re
import subprocess
import sys

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

from classrooms.models import InstructorInvite, InstructorRole, is_instructor

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db
User = get_user_model()


def signup(client, username="newbie", **extra):
    data = {"username": username, "email": f"{username}@example.com", "password1": PASSWORD, "password2": PASSWORD}
    data.update(extra)
    return client.post("/accounts/signup/", data)


def test_a_visitor_signs_up_and_is_signed_in_as_a_student():
    client = Client()
    page = client.get("/accounts/signup/")
    assert page.status_code == 200 and b'data-testid="signup-form"' in page.content
    response = signup(client)
    assert response.status_code == 302 and response["Location"] == "/classes/"
    user = User.objects.get(username="newbie")
    assert not is_instructor(user)
    home = client.get("/classes/")
    assert b"newbie" in home.content and b'data-testid="class-picker"' in home.content


def test_sign_up_rejects_mismatched_passwords_and_shows_why():
    response = signup(Client(), password2="something-else-entirely")
    assert response.status_code == 200
    assert b'data-testid="error"' in response.content
    assert not User.objects.filter(username="newbie").exists()


def test_an_invite_code_at_sign_up_makes_an_instructor_and_is_used_up():
    invite = InstructorInvite.objects.create(note="Ms Rivera", max_uses=1)
    signup(Client(), "rivera", invite_code=invite.code.lower())
    assert is_instructor(User.objects.get(username="rivera"))
    invite.refresh_from_db()
    assert invite.uses == 1 and not invite.usable
    response = signup(Client(), "second", invite_code=invite.code)
    assert response.status_code == 200 and b"not valid" in response.content


def test_a_signed_in_student_redeems_an_invite(people, client_for):
    invite = InstructorInvite.objects.create(max_uses=0)
    client = client_for("student")
    response = client.post("/accounts/instructor/", {"code": invite.code})
    assert response.status_code == 302
    assert InstructorRole.objects.get(user=people.student).invite == invite
    assert client.post("/accounts/instructor/", {"code": "NOPE99"}).status_code == 200


def test_an_expired_or_inactive_invite_does_not_work(people, client_for):
    from django.utils import timezone

    expired = InstructorInvite.objects.create(expires_at=timezone.now() - timezone.timedelta(days=1))
    inactive = InstructorInvite.objects.create(active=False)
    client = client_for("student")
    for invite in (expired, inactive):
        assert client.post("/accounts/instructor/", {"code": invite.code}).status_code == 200
    assert not is_instructor(people.student)


def test_sign_in_and_sign_out(people):
    client = Client()
    page = client.get("/accounts/login/")
    assert page.status_code == 200 and b'data-testid="login-form"' in page.content
    response = client.post("/accounts/login/", {"username": "stu", "password": PASSWORD})
    assert response.status_code == 302
    assert b'data-testid="sign-out"' in client.get("/classes/").content
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/classes/").status_code == 302  # signed out: sent to sign in
    wrong = client.post("/accounts/login/", {"username": "stu", "password": "nope"})
    assert wrong.status_code == 200 and b'data-testid="error"' in wrong.content


def test_the_header_offers_sign_in_to_anonymous_visitors():
    page = Client().get("/accounts/login/")
    assert b'data-testid="sign-in"' in page.content and b'data-testid="sign-up"' in page.content
    assert b'data-testid="class-picker"' not in page.content


def test_password_change(people, client_for):
    client = client_for("student")
    page = client.get("/accounts/password_change/")
    assert page.status_code == 200 and b"Your account" in page.content
    response = client.post(
        "/accounts/password_change/",
        {"old_password": PASSWORD, "new_password1": "brand-new-passw0rd!", "new_password2": "brand-new-passw0rd!"},
    )
    assert response.status_code == 302
    people.student.refresh_from_db()
    assert people.student.check_password("brand-new-passw0rd!")


def test_password_reset_sends_a_working_link_by_email(people):
    client = Client()
    response = client.post("/accounts/password_reset/", {"email": "stu@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["stu@example.com"] and "reset" in message.subject.lower()
    link = re.search(r"https?://[^/]+(/accounts/reset/\S+)", message.body).group(1)
    form = client.get(link, follow=True)
    assert form.status_code == 200 and b"Set a new password" in form.content
    done = client.post(form.redirect_chain[-1][0], {"new_password1": "reset-passw0rd!!", "new_password2": "reset-passw0rd!!"})
    assert done.status_code == 302
    people.student.refresh_from_db()
    assert people.student.check_password("reset-passw0rd!!")


def test_without_a_mail_server_mail_is_printed_on_the_console():
    """A school running `make run` has no mail server: a password-reset link
    (any mail) appears in the terminal the server prints to. Run with the
    site's own settings (the tests' settings keep mail in memory)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMAIL_") and k != "DATABASE_URL"}
    env["DJANGO_SETTINGS_MODULE"] = "tokenwheel_site.settings"
    done = subprocess.run(
        [sys.executable, "manage.py", "sendtestemail", "ada@example.com"],
        cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "To: ada@example.com" in done.stdout and "Subject: Test email from" in done.stdout


def test_signing_in_acts_in_the_class_joined_last(people):
    from classrooms import policy

    client = Client()
    client.post("/accounts/login/", {"username": "stu", "password": PASSWORD})
    assert client.session[policy.ACTING_SESSION_KEY] == people.classroom.pk
    loner = Client()
    User.objects.create_user("loner", password=PASSWORD)
    loner.post("/accounts/login/", {"username": "loner", "password": PASSWORD})
    assert policy.ACTING_SESSION_KEY not in loner.session
