"""Getting a run ready to play: its model ready, its prompt tokenized, the
tokens of a resumed run decoded. Everything here asks the model worker."""

from __future__ import annotations

from common.errors import AppError
from modelworker import client

from . import services
from .run import Run


class ReadyModels:
    """The models one connection found ready. A ready model stays ready: later
    starts skip asking the model worker again."""

    def __init__(self):
        self.entries: dict[str, dict] = {}

    async def listing(self) -> list[dict]:
        """Every registered model with its status (as the ``models`` message shows them)."""
        models = (await client.arequest("models"))["models"]
        for m in models:
            if m.get("status") == services.READY:
                self.entries[m["id"]] = m
        return models

    async def require(self, model: str) -> dict:
        """``model``'s entry, or an AppError saying why it cannot be used now
        (unknown, loading: asked to load, unavailable: with the reason)."""
        if model not in self.entries:
            problem = services.readiness_error(model, await self.listing())
            if problem is not None:
                raise AppError(*problem, 503, model=model)
        return self.entries[model]


async def prepare(run: Run, models: ReadyModels) -> None:
    """Fill in what ``run`` needs from the model before it plays."""
    entry = await models.require(run.model)
    if entry.get("max_context"):  # a larger window is capped at the model's own maximum
        run.context_window = min(run.context_window, int(entry["max_context"]))
    tokenized = await client.arequest("tokenize", model=run.model, text=run.text)
    if not run.prompt_ids:  # a loaded run keeps the ids it was saved with: they are the truth
        run.prompt_ids = tokenized["ids"]
    run.prompt_tokens = [{"token_id": i, "token": t} for i, t in zip(tokenized["ids"], tokenized["tokens"])]
    if run.resume_tokens:
        ids = [t["token_id"] for t in run.resume_tokens[: run.max_tokens]]
        texts = (await client.arequest("decode", model=run.model, ids=ids))["tokens"]
        run.tokens = [{**t, "token": text} for t, text in zip(run.resume_tokens, texts)]
        run.resume_tokens = []
