"""Sign-in lockout: an account after repeated failed sign-ins, an address
after many (a school shares one), each with a message that says what
happened and for how long; and the test suites' own sign-ins unaffected."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.utils import timezone

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db


def sign_in(username, password, address="10.0.0.1"):
    client = Client(REMOTE_ADDR=address)
    response = client.post("/accounts/login/", {"username": username, "password": password})
    return client, response


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_an_account_is_locked_after_five_failed_sign_ins_even_with_the_right_password(people):
    for _ in range(4):
        client, response = sign_in("stu", "wrong-password")
        assert response.status_code == 200 and b"correct username and password" in response.content
    client, response = sign_in("stu", "wrong-password")
    assert response.status_code == 429

    client, response = sign_in("stu", PASSWORD)
    assert response.status_code == 429
    assert not signed_in(client)
    text = response.content.decode()
    assert "This account is locked for 15 minutes after 5 failed sign-ins" in text
    assert 'data-testid="login-form"' in text  # the sign-in page again, not a bare error

    # Another student at the same address signs in as usual; this account stays locked from anywhere.
    other, response = sign_in("mate", PASSWORD)
    assert response.status_code == 302 and signed_in(other)
    elsewhere, response = sign_in("stu", PASSWORD, address="10.9.9.9")
    assert response.status_code == 429 and not signed_in(elsewhere)


def test_the_lock_lifts_after_the_cool_off(people):
    for _ in range(5):
        sign_in("stu", "wrong-password")
    assert sign_in("stu", PASSWORD)[1].status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    client, response = sign_in("stu", PASSWORD)
    assert response.status_code == 302 and signed_in(client)


def test_an_address_is_locked_after_many_failures_across_accounts_and_other_addresses_are_not(people, settings):
    settings.LOGIN_LOCKOUT = {**settings.LOGIN_LOCKOUT, "FAILURES_PER_ADDRESS": 8}
    # Eight different names, one failure each: no account reaches its limit.
    for i in range(8):
        assert sign_in(f"guess{i}", "password123", address="10.0.0.7")[1].status_code in (200, 429)
    client, response = sign_in("stu", PASSWORD, address="10.0.0.7")
    assert response.status_code == 429 and not signed_in(client)
    assert "Too many failed sign-ins from your network (8)" in response.content.decode()
    assert "paused for 15 minutes" in response.content.decode()

    client, response = sign_in("stu", PASSWORD, address="10.0.0.8")
    assert response.status_code == 302 and signed_in(client)


def test_a_class_behind_one_address_can_mistype_without_locking_each_other_out(people):
    # 30 students, one typo each, all from the school's one address: nobody is locked.
    for i in range(30):
        sign_in(f"student{i}", "typo", address="10.0.0.1")
    client, response = sign_in("stu", PASSWORD, address="10.0.0.1")
    assert response.status_code == 302 and signed_in(client)


def test_the_test_clients_own_sign_ins_are_never_counted_or_locked(people):
    # Client.login() authenticates without a request: no address to lock, nothing recorded.
    for _ in range(10):
        assert not Client().login(username="stu", password="wrong")
    assert Client().login(username="stu", password=PASSWORD)
    assert AccessAttempt.objects.count() == 0


@pytest.mark.parametrize("run", [1, 2])
def test_failed_sign_ins_do_not_carry_over_from_one_test_to_the_next(people, run):
    # Each run fails four times: were the count shared between tests, the second would be locked.
    for _ in range(4):
        sign_in("stu", "wrong-password")
    client, response = sign_in("stu", PASSWORD)
    assert response.status_code == 302 and signed_in(client)
