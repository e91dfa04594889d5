"""The sign-in lockout through daphne (ASGI: django-axes's async middleware
path), on PostgreSQL."""

import re


def _sign_in(stack, username, password):
    with stack.client() as http:
        page = http.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        return http.post(
            "/accounts/login/",
            data={"username": username, "password": password, "csrfmiddlewaretoken": token},
            headers={"Referer": stack.base_url + "/accounts/login/"},
        )


def test_five_failed_sign_ins_lock_the_account_with_a_page_that_says_so(stack):
    stack.session_cookie("lockout-victim")  # creates the user; its password is pw- + name * 3
    password = "pw-" + "lockout-victim" * 3
    for _ in range(5):
        _sign_in(stack, "lockout-victim", "wrong-password")
    locked = _sign_in(stack, "lockout-victim", password)
    assert locked.status_code == 429
    assert "This account is locked for 15 minutes after 5 failed sign-ins" in locked.text
    assert 'data-testid="login-form"' in locked.text
    assert "sessionid" not in locked.cookies

