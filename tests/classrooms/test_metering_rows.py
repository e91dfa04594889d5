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


@pytest.mark.django_db(transaction=True)
def test_a_remembered_usage_row_is_one_that_was_committed_and_still_exists():
    """Appends update the row their key last found without looking it up
    (classrooms.metering); a row whose transaction rolled back, or that was
    deleted since, is never the one counted on."""
    from django.db import transaction

    from classrooms import metering, policy

    rules = policy.open_rules()
    key = {"user": None, "classroom": None, "tool": "wheel", "date": timezone.localdate()}

    class Conflict(Exception):
        pass

    with pytest.raises(Conflict), transaction.atomic():  # an append that lost a race: its row goes too
        metering.add_tokens(rules, None, "model-a", 1)
        raise Conflict
    assert not DailyUsage.objects.exists()
    metering.count(rules, None, "model-b", "wheel", sessions=1)  # another key's row, perhaps at the same pk
    with transaction.atomic():
        metering.add_tokens(rules, None, "model-a", 1)
    with transaction.atomic():
        metering.add_tokens(rules, None, "model-a", 1)  # this one from memory
    assert DailyUsage.objects.get(model_name="model-a", **key).tokens == 2
    assert DailyUsage.objects.get(model_name="model-b", **key).tokens == 0

    DailyUsage.objects.filter(model_name="model-a").delete()  # retention
    with transaction.atomic():
        metering.add_tokens(rules, None, "model-a", 3)
    assert DailyUsage.objects.get(model_name="model-a", **key).tokens == 3
