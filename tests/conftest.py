"""Fixtures shared by every test: the model engine (its model loaded once per
test session), an API client, and a clean cache (throttle state) per test.

Which model answers: ``--test-model=real`` (the default, ``make test``) is
SmolLM2-135M everywhere. ``--test-model=tiny`` (``make test-fast``, or
``TEST_MODEL=tiny``) registers a 2-layer stand-in with SmolLM2's tokenizer
(``tests/tiny_model.py``) under the default model's id, so every test that
does not care about the real numbers runs in milliseconds per token. A test
marked ``real_model`` asserts the real model's numbers: in a tiny session its
``engine`` and ``smol`` fixtures are a second engine with SmolLM2-135M, and
the settings are the real ones while it runs. Such a test reaches the model
through those two fixtures (``api`` and the HTTP/websocket stack serve the
session's model).
"""

import logging
import os
import warnings

import pytest
from django.core.cache import cache

DEFAULT_MODEL = "smollm2-135m"


def pytest_addoption(parser):
    parser.addoption(
        "--test-model",
        choices=("real", "tiny"),
        default=os.environ.get("TEST_MODEL", "real"),
        help="real: SmolLM2-135M everywhere (default); tiny: a 2-layer stand-in with SmolLM2's "
        "tokenizer, except for tests marked real_model (make test-fast)",
    )


class _LibraryDeprecations(logging.Handler):
    """transformers announces most deprecations through its logger
    (``warning_once``), not the warnings module: 5.24's rename of the
    forward's ``past_key_values`` only printed a line. Re-issued as a
    DeprecationWarning, pyproject's ``error::DeprecationWarning`` makes it
    fail the test that reached it, instead of scrolling past in CI."""

    def emit(self, record):
        message = record.getMessage()
        if "deprecat" in message.lower() or "will be removed" in message.lower():
            warnings.warn(f"{record.name} logged: {message}", DeprecationWarning, stacklevel=2)


def pytest_configure(config):
    logging.getLogger("transformers").addHandler(_LibraryDeprecations(logging.WARNING))


# --------------------------------------------------------------------------- the model


def _tiny_session(config) -> bool:
    return config.getoption("--test-model") == "tiny"


def _wants_real_model(request) -> bool:
    return _tiny_session(request.config) and request.node.get_closest_marker("real_model") is not None


@pytest.fixture(scope="session", autouse=True)
def _session_models(request):
    """The MODELWORKER settings of the session (tiny: the default model's id
    points at the tiny model's directory) and the real ones."""
    from django.conf import settings

    real = settings.MODELWORKER
    if not _tiny_session(request.config):
        yield {"session": real, "real": real}
        return
    from modelworker import registry
    from tests.tiny_model import tiny_model_dir

    path = tiny_model_dir(registry.get(DEFAULT_MODEL), real["CACHE_DIR"])
    tiny = {
        **real,
        "MODELS": [
            {**m, "source": {"type": "local", "path": str(path)}} if m["id"] == DEFAULT_MODEL else m
            for m in real["MODELS"]
        ],
    }
    settings.MODELWORKER = tiny
    yield {"session": tiny, "real": real}
    settings.MODELWORKER = real


@pytest.fixture(autouse=True)
def _this_tests_settings(request, _session_models):
    """A real_model test in a tiny session sees the real registry."""
    if not _wants_real_model(request):
        yield
        return
    from django.conf import settings

    settings.MODELWORKER = _session_models["real"]
    yield
    settings.MODELWORKER = _session_models["session"]


@pytest.fixture(scope="session")
def _real_engine_beside_the_tiny_one():
    from modelworker.engine import Engine

    return Engine()  # made while a real_model test's (real) settings are in force


@pytest.fixture
def engine(request, _this_tests_settings):
    """The engine with the default model loaded (the session's, or SmolLM2-135M for a real_model test)."""
    if _wants_real_model(request):
        eng = request.getfixturevalue("_real_engine_beside_the_tiny_one")
    else:
        from modelworker.engine import get_engine

        eng = get_engine()
    eng.get(DEFAULT_MODEL)  # loaded once per engine, on first use
    return eng


@pytest.fixture
def smol(engine):
    """The loaded default model (tokenizer, caches, batcher)."""
    return engine.get(DEFAULT_MODEL)


@pytest.fixture
def api(request, engine):
    if _wants_real_model(request):
        pytest.fail("a real_model test reaches the model through `engine` or `smol`: in a tiny "
                    "session the API serves the tiny model", pytrace=False)
    from rest_framework.test import APIClient

    return APIClient()


# --------------------------------------------------------------------------- the rest


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()
    yield
    cache.clear()


def pytest_collection_modifyitems(config, items):
    # Playwright's sync API keeps an event loop running on the main thread for
    # as long as its (session-scoped) browser lives; an async test collected
    # after it could not start its own loop. Browser tests therefore run last.
    items.sort(key=lambda item: item.nodeid.startswith("tests/browser/"))
    if _tiny_session(config) and config.pluginmanager.hasplugin("xdist"):
        # Under `-n ... --dist loadgroup`, one worker loads SmolLM2-135M for all of them.
        for item in items:
            if item.get_closest_marker("real_model"):
                item.add_marker(pytest.mark.xdist_group("real_model"))
