"""Usage counters when several rows share one key (issue 12's production run:
concurrent first appends of the day on PostgreSQL wrote two anonymous rows,
and every later append of that day failed with a 500)."""

import json

import pytest
from django.utils import timezone

from classrooms.models import DailyUsage

pytestmark = pytest.mark.django_db


def post(api, path, data=None):
    return api.post(path, data=json.dumps(data or {}), content_type="application/json")


def test_appends_go_on_and_are_counted_when_a_day_has_two_rows_for_one_key(api):
    sid = post(api, "/api/sessions").json()["session_id"]
    assert post(api, f"/api/sessions/{sid}/set-prompt", {"prompt": "Today in class we learned"}).status_code == 200
    key = {"user": None, "classroom": None, "model_name": "smollm2-135m", "tool": "wheel", "date": timezone.localdate()}
    DailyUsage.objects.create(**key)  # the duplicate a race (or a deleted account's rows) leaves
    assert DailyUsage.objects.filter(**key).count() == 2
    token = api.get(f"/api/sessions/{sid}/next-token-probs").json()["above_threshold_tokens"][0]["token_id"]
    for _ in range(2):
        assert post(api, f"/api/sessions/{sid}/append-token", {"token_id": token}).status_code == 200
    assert sum(DailyUsage.objects.filter(**key).values_list("tokens", flat=True)) == 2
