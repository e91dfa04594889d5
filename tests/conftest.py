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
