"""Rate limits as a school meets them: many students behind one address,
each with a session of their own (issue 12). The site's own rates unless a
test says otherwise."""

import json

import pytest
from django.urls import resolve
from rest_framework.exceptions import Throttled
from rest_framework.settings import api_settings
from rest_framework.test import APIRequestFactory

from wheel.throttles import AddressRateThrottle, CountingThrottle, SessionRateThrottle

pytestmark = pytest.mark.django_db

SCHOOL_ADDRESS = "203.0.113.7"  # the school's NAT, as the server sees every student


def rate(scope):
    count, period = api_settings.DEFAULT_THROTTLE_RATES[scope].split("/")
    return int(count), {"s": 1, "m": 60, "h": 3600, "d": 86400}[period[0]]


def post(api, path, data=None, **extra):
    return api.post(path, data=json.dumps(data if data is not None else {}), content_type="application/json", REMOTE_ADDR=SCHOOL_ADDRESS, **extra)


def new_session(api):
    response = post(api, "/api/sessions")
    assert response.status_code == 201, response.content
    return response.json()["session_id"]


def passes_throttles(request):
    """Run the request through the throttles of the view its URL resolves to,
    exactly as DRF does before the view's handler (no model, no database)."""
    match = resolve(request.path)
    view = match.func.view_class(**getattr(match.func, "view_initkwargs", {}))
    view.args, view.kwargs = match.args, match.kwargs
    drf_request = view.initialize_request(request)
    try:
        view.check_throttles(drf_request)
    except Throttled:
        return False
    return True


def test_a_school_of_120_students_behind_one_address_is_not_throttled(api):
    """Each creates a session, then does a minute of the capacity workload
    (a step every ~2 s: probs + append, the prompt set twice): the busiest
    minute a throttle sees from that school."""
    sessions = [new_session(api) for _ in range(120)]
    factory = APIRequestFactory()
    refused = 0
    for sid in sessions:
        requests = [factory.post(f"/api/sessions/{sid}/set-prompt", {}, format="json", REMOTE_ADDR=SCHOOL_ADDRESS)]
        for step in range(30):
            requests.append(factory.get(f"/api/sessions/{sid}/next-token-probs", REMOTE_ADDR=SCHOOL_ADDRESS))
            requests.append(factory.post(f"/api/sessions/{sid}/append-token", {}, format="json", REMOTE_ADDR=SCHOOL_ADDRESS))
            if step == 19:
                requests.append(factory.post(f"/api/sessions/{sid}/set-prompt", {}, format="json", REMOTE_ADDR=SCHOOL_ADDRESS))
        refused += sum(not passes_throttles(r) for r in requests)
    assert refused == 0
    # And through the whole stack, after all of that, from the same address:
    assert api.get(f"/api/sessions/{sessions[0]}", REMOTE_ADDR=SCHOOL_ADDRESS).status_code == 200
    assert post(api, f"/api/sessions/{sessions[-1]}/set-prompt", {"prompt": "Today in class we learned"}).status_code == 200


def test_one_session_hammering_is_throttled_with_retry_after_and_its_classmates_are_not(api):
    limit, _ = rate("session")
    hammered, classmate = new_session(api), new_session(api)
    codes = [api.get(f"/api/sessions/{hammered}", REMOTE_ADDR=SCHOOL_ADDRESS).status_code for _ in range(limit)]
    assert set(codes) == {200}
    refused = api.get(f"/api/sessions/{hammered}", REMOTE_ADDR=SCHOOL_ADDRESS)
    assert refused.status_code == 429
    assert refused.json()["error"] == "Too many requests"
    assert int(refused["Retry-After"]) > 0
    assert api.get(f"/api/sessions/{classmate}", REMOTE_ADDR=SCHOOL_ADDRESS).status_code == 200


def test_an_address_creating_sessions_far_beyond_a_school_is_throttled(api, django_user_model, monkeypatch):
    limit, period = rate("create")
    # The clock stands still in the middle of one window: on a busy machine the
    # creates below can take more than a minute, and a sliding window would
    # then rightly let some through.
    monkeypatch.setattr(CountingThrottle, "timer", lambda self: 1000.5 * period)
    codes = [post(api, "/api/sessions").status_code for _ in range(limit)]
    assert set(codes) == {201}
    refused = post(api, "/api/sessions")
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    # The sessions made are still served, and a signed-in teacher at the same
    # address creates on a budget of their own.
    teacher = django_user_model.objects.create_user("teacher", password="pw")
    api.force_authenticate(teacher)
    assert post(api, "/api/sessions").status_code == 201


def test_retry_after_says_when_the_session_may_go_on(api, monkeypatch):
    clock = [1_000_000.0]
    monkeypatch.setattr(CountingThrottle, "timer", lambda self: clock[0])
    monkeypatch.setattr(SessionRateThrottle, "THROTTLE_RATES", {"session": "3/min"})
    sid = new_session(api)
    assert [api.get(f"/api/sessions/{sid}").status_code for _ in range(3)] == [200, 200, 200]
    refused = api.get(f"/api/sessions/{sid}")
    assert refused.status_code == 429
    wait = int(refused["Retry-After"])
    assert 1 <= wait <= 60
    clock[0] += wait - 5
    assert api.get(f"/api/sessions/{sid}").status_code == 429
    clock[0] += 5
    assert api.get(f"/api/sessions/{sid}").status_code == 200


def test_the_address_limit_applies_to_anonymous_clients_only(api, django_user_model, monkeypatch):
    monkeypatch.setattr(AddressRateThrottle, "THROTTLE_RATES", {"anon": "2/min"})
    sid = new_session(api)
    assert api.get(f"/api/sessions/{sid}", REMOTE_ADDR=SCHOOL_ADDRESS).status_code == 200
    assert api.get(f"/api/sessions/{sid}", REMOTE_ADDR=SCHOOL_ADDRESS).status_code == 429
    # Another address is another client.
    assert api.get(f"/api/sessions/{sid}", REMOTE_ADDR="198.51.100.1").status_code == 200
    # A signed-in user behind the same address counts as themselves.
    api.force_authenticate(django_user_model.objects.create_user("student", password="pw"))
    mine = new_session(api)
    assert [api.get(f"/api/sessions/{mine}", REMOTE_ADDR=SCHOOL_ADDRESS).status_code for _ in range(3)] == [200, 200, 200]
