"""The playground's own page: the drawer opened over a short introduction
(the drawer itself is on every page, from base.html)."""

from django.conf import settings
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie


@ensure_csrf_cookie
def playground_page(request):
    return render(request, "playground/playground.html", {"limits": settings.PLAYGROUND})
