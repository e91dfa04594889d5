"""Fixtures shared by every test: the real default model (loaded once per
test session), an API client, and a clean cache (throttle state) per test."""

import pytest
from django.core.cache import cache

DEFAULT_MODEL = "smollm2-135m"


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(scope="session")
def engine():
    from modelworker.engine import get_engine

    eng = get_engine()
    eng.get(DEFAULT_MODEL)  # loads once for the whole session
    return eng


@pytest.fixture(scope="session")
def smol(engine):
    """The loaded default model (tokenizer, caches, batcher)."""
    return engine.get(DEFAULT_MODEL)


@pytest.fixture
def api(engine):
    from rest_framework.test import APIClient

    return APIClient()


def pytest_collection_modifyitems(config, items):
    # Playwright's sync API keeps an event loop running on the main thread for
    # as long as its (session-scoped) browser lives; an async test collected
    # after it could not start its own loop. Browser tests therefore run last.
    items.sort(key=lambda item: item.nodeid.startswith("tests/browser/"))
