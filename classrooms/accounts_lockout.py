"""Sign-in lockout, per account and per address (django-axes).

Axes counts failed sign-ins by username and by client address, and has one
limit for both. A school signs in from one NAT address, so an address
needs a far higher limit than an account: ``LOGIN_LOCKOUT`` in settings has
one each. ``AccountAndAddressHandler`` scales each count to Axes's single
limit, so Axes locks when either reaches its own. ``lockout_response``
shows the sign-in page again with what happened and for how long.
"""

from __future__ import annotations

from axes.backends import AxesStandaloneBackend
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_lockout_parameters
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.forms import AuthenticationForm
from django.shortcuts import render


def _limit_of(parameter) -> int:
    limits = settings.LOGIN_LOCKOUT
    return limits["FAILURES_PER_ACCOUNT"] if parameter == "username" else limits["FAILURES_PER_ADDRESS"]


def failures_by_parameter(handler, request, credentials=None) -> dict[str, int]:
    """Recent failures (within the cool-off) per lockout parameter: {"username": n, "ip_address": m}."""
    counts = {}
    attempts = handler.get_user_attempts(request, credentials)
    for parameter, queryset in zip(get_lockout_parameters(request, credentials), attempts):
        name = parameter if isinstance(parameter, str) else "+".join(parameter)
        counts[name] = sum(a.failures_since_start for a in queryset)
    return counts


class AccountAndAddressHandler(AxesDatabaseHandler):
    def get_failures(self, request, credentials=None) -> int:
        # Axes locks at failures >= AXES_FAILURE_LIMIT; n * L // limit reaches L exactly when n reaches limit.
        axes_limit = settings.AXES_FAILURE_LIMIT
        counts = failures_by_parameter(self, request, credentials)
        return max((n * axes_limit // _limit_of(p) for p, n in counts.items()), default=0)


class LockoutBackend(AxesStandaloneBackend):
    """Axes's check before every sign-in made for a request. A sign-in
    without one (a management command, the test client's ``login()``)
    comes from no address and has no one to lock out: it is let through."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def lockout_message(request, credentials=None) -> str:
    minutes = settings.LOGIN_LOCKOUT["MINUTES"]
    counts = failures_by_parameter(AccountAndAddressHandler(), request, credentials)
    if counts.get("username", 0) >= _limit_of("username"):
        return (
            f"This account is locked for {minutes} minutes after {_limit_of('username')} failed sign-ins. "
            "Try again then, or ask your teacher or administrator to reset your password."
        )
    return (
        f"Too many failed sign-ins from your network ({_limit_of('ip_address')}): "
        f"signing in from here is paused for {minutes} minutes."
    )


def lockout_response(request, original_response=None, credentials=None):
    """The sign-in page again, saying why, with 429 Too Many Requests."""
    # Axes's async middleware hands the credentials over as its second argument.
    credentials = credentials or (original_response if isinstance(original_response, dict) else None)
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    messages.error(request, lockout_message(request, credentials))
    form = AuthenticationForm(request, initial={"username": username})
    return render(request, "registration/login.html", {"form": form, "next": request.POST.get("next", "")}, status=429)
