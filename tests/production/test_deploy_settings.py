"""Production settings from the environment: `check --deploy` is clean,
a missing secret is refused, and static files are served hashed and cached."""

import json
import subprocess
import textwrap

import pytest

from .conftest import PYTHON, ROOT, base_env

pytestmark = pytest.mark.no_services

SECRET = "s3cr3t-" + "x1Y2z3" * 10


def production_env(**extra):
    env = base_env("postgres://tokenwheel@db.internal:5432/tokenwheel", "redis://redis.internal:6379/0", "asgi")
    env.update(
        SECURE="1",
        DJANGO_SECRET_KEY=SECRET,
        ALLOWED_HOSTS="wheel.example.org",
        CSRF_TRUSTED_ORIGINS="https://wheel.example.org",
        STATICFILES_BACKEND="whitenoise.storage.CompressedManifestStaticFilesStorage",
    )
    env.update(extra)
    return env


def manage(*args, env, timeout=120):
    return subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    """The deployment order the README gives: collectstatic first."""
    env = production_env(STATIC_ROOT=str(tmp_path_factory.mktemp("static")))
    done = manage("collectstatic", "--noinput", "-v", "0", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return env


def test_check_deploy_finds_nothing_to_warn_about_with_the_production_environment(collected):
    done = manage("check", "--deploy", "--fail-level", "WARNING", env=collected)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


def test_secure_mode_refuses_to_start_with_the_public_development_secret():
    env = production_env()
    del env["DJANGO_SECRET_KEY"]
    done = manage("check", env=env)
    assert done.returncode != 0
    assert "SECURE=1 needs DJANGO_SECRET_KEY" in done.stderr


def test_collected_static_files_are_served_hashed_compressed_and_cached_for_a_year(collected):
    env = collected
    script = textwrap.dedent(
        """
        import django, json, pathlib
        django.setup()
        from django.conf import settings
        from django.contrib.staticfiles.storage import staticfiles_storage
        from django.test import Client
        source = next(p for p in sorted(pathlib.Path("static").rglob("*.js")))
        name = source.relative_to("static").as_posix()
        url = staticfiles_storage.url(name)
        assert url != settings.STATIC_URL + name, "not hashed: " + url
        response = Client().get(url, secure=True, headers={"host": "wheel.example.org", "accept-encoding": "gzip"})
        print(json.dumps([response.status_code, response.headers.get("Cache-Control"), response.headers.get("Content-Encoding")]))
        """
    )
    served = subprocess.run([PYTHON, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert served.returncode == 0, served.stderr
    status, cache_control, encoding = json.loads(served.stdout.splitlines()[-1])
    assert status == 200
    assert "max-age=315360000" in cache_control and "immutable" in cache_control
    assert encoding == "gzip"
