"""Reading settings from the environment: the helpers every settings module uses.

Imports no app (settings are read before apps load)."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name, default=False):
    return os.environ.get(name, str(default)).strip().lower() in ("1", "true", "yes", "on")


def envint(name, default):
    return int(os.environ.get(name, default))


def envfloat(name, default):
    return float(os.environ.get(name, default))


def envlist(name, default=""):
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]
