"""On sign-in, act in the class the user joined last (if they have not picked one)."""

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from . import policy
from .models import Membership


@receiver(user_logged_in)
def pick_a_class_on_sign_in(sender, request, user, **kwargs):
    if request is None or not hasattr(request, "session"):
        return
    if policy.acting_classroom(request, user) is not None:
        return
    latest = (
        Membership.objects.filter(user=user, classroom__archived_at__isnull=True)
        .select_related("classroom")
        .order_by("-joined_at")
        .first()
    )
    if latest is not None:
        policy.set_acting_classroom(request, latest.classroom)
