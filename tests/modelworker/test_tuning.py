"""Process tuning: thread counts that take effect, which thread does what
torch work, and memory given back to the OS."""

import os
import subprocess
import sys
import threading

import pytest
import torch
from django.conf import settings

from modelworker.engine import LoadedModel, tuning
from modelworker.engine.padded_forward import PaddedForward


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: every thread count is 1 anyway")
def test_the_configured_thread_count_holds_before_torch_is_first_used():
    """OpenMP reads OMP_NUM_THREADS once, when torch loads: the engine sets
    it on import, before torch, so a process that imports the engine first
    runs torch on TORCH_THREADS threads (here 1 on a machine with more)."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env.update(TORCH_THREADS="1", DJANGO_SETTINGS_MODULE="tokenwheel_site.test_settings")
    script = (
        "import django; django.setup(); import modelworker.engine, torch, os; "
        "print(torch.get_num_threads(), os.environ['OMP_NUM_THREADS'])"
    )
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "1"]


def test_openmp_threads_spin_briefly_unless_the_environment_says_otherwise():
    """libgomp's default spin took 2-4x the CPU per step once the cores were
    shared; sleeping at once made a lone forward 25-45% slower. The engine
    sets a short spin, and an explicit choice in the environment wins."""
    script = (
        "import django; django.setup(); import modelworker.engine, os; "
        "print(os.environ.get('OMP_WAIT_POLICY', '-'), os.environ.get('GOMP_SPINCOUNT', '-'))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env["DJANGO_SETTINGS_MODULE"] = "tokenwheel_site.test_settings"

    def chosen(**extra):
        out = subprocess.run([sys.executable, "-c", script], env={**env, **extra}, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return out.stdout.split()

    assert chosen() == ["-", str(tuning.OPENMP_SPIN_COUNT)]
    assert chosen(OMP_WAIT_POLICY="PASSIVE") == ["PASSIVE", "-"]
    assert chosen(GOMP_SPINCOUNT="500") == ["-", "500"]


def test_the_probability_maths_leaves_the_cores_to_the_forward(smol, engine):
    """A request thread runs torch (the maths of a logits-cache hit) on one
    thread; the forward thread keeps the configured count. Left at two, every
    request thread kept an OpenMP team and a token's forward took ~50 ms
    instead of ~28 ms."""
    real = PaddedForward(smol.model)
    seen = []

    def forward(steps):
        seen.append(torch.get_num_threads())
        return real(steps)

    m = LoadedModel(smol.spec, smol.model, smol.tokenizer, settings.MODELWORKER, forward=forward)
    counts = []

    def request():
        engine.handle("distribution", {"model": smol.spec.id, "ids": smol.encode("Maths on a request thread")})
        counts.append(torch.get_num_threads())
        m.logits(smol.encode("A forward after that maths"))

    t = threading.Thread(target=request)
    t.start()
    t.join(30)
    m.close()
    assert counts == [1]
    assert seen == [settings.MODELWORKER["TORCH_THREADS"]]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_malloc_trim_is_found_on_this_platform():
    assert tuning.heap_trimmer() is not None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_malloc_arenas_are_limited_unless_the_environment_says_otherwise(monkeypatch):
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert tuning.limit_malloc_arenas() is True
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert tuning.limit_malloc_arenas() is False
