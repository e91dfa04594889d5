"""How the apps write their API paths: as the seed writes them (no trailing
slash; one is tolerated), with ids as UUIDs in either case."""

from django.urls import re_path

UUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


def uuid(name: str) -> str:
    """A path segment that captures a UUID as ``name``."""
    return f"(?P<{name}>{UUID})"


def api_path(route: str, view, name: str):
    """The path ``route`` (a regular expression, without anchors) to the API view class ``view``."""
    return re_path(rf"^{route}/?$", view.as_view(), name=name)
