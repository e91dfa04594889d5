"""The operations the engine answers (``Engine.handle(op, payload)`` calls
``op_<op>``): plain data in, plain data out, shaped by :mod:`.wire`.

A mixin of :class:`.service.Engine`, which provides ``get(model_id)`` (a
loaded model), ``status(model_id)``, ``loaded_models()`` and ``config``.
"""

from __future__ import annotations

from .. import registry, sampling
from ..errors import ModelError
from . import wire
from .batch_maths import Question


class Operations:
    # ---- models and text

    def op_models(self) -> dict:
        models = []
        for spec in registry.all_models():
            entry = spec.public()
            entry.update(self.status(spec.id))
            loaded = self.loaded_models().get(spec.id)
            if loaded is not None:
                entry["vocabulary_size"] = loaded.vocab_size
                entry["max_context"] = loaded.max_context
            models.append(entry)
        return {"models": models}

    def op_load(self, model: str | None = None) -> dict:
        """Make sure ``model`` is loaded (waiting while it loads); its status."""
        loaded = self.get(model)
        return {"model": loaded.spec.id, **self.status(loaded.spec.id)}

    def op_tokenize(self, model: str, text: str) -> dict:
        m = self.get(model)
        bad = m.unrepresentable(text)
        if bad:
            raise ModelError("unknown_characters", f"Unknown characters: {bad!r}", 400, characters=bad)
        ids = m.encode(text)
        return {"ids": ids, "tokens": [m.token_text(i) for i in ids]}

    def op_decode(self, model: str, ids: list) -> dict:
        m = self.get(model)
        m.check_ids(ids)
        return {"text": m.decode(ids), "tokens": [m.token_text(i) for i in ids]}

    def op_lookup(self, model: str, text: str) -> dict:
        m = self.get(model)
        return {"token_id": m.lookup(text)}

    def op_release(self, cache_key: str, model: str | None = None) -> dict:
        released = False
        for loaded in list(self.loaded_models().values()):
            if model in (None, loaded.spec.id):
                released = loaded.release(cache_key) or released
        return {"released": released}

    # ---- distributions and choices

    def _ask(self, m, ids, cache_key, question, follow_up=False):
        """The answer to ``question`` about the token after ``ids`` (maths done by the batcher)."""
        m.check_ids(ids)
        return m.ask(ids, cache_key, question, timeout=self.config["TIMEOUT_SECONDS"], follow_up=follow_up)

    def op_distribution(
        self, model, ids, threshold=0.01, temperature=1.0, top_p=1.0, other_top_k=10, cache_key=None
    ) -> dict:
        m = self.get(model)
        question = Question(temperature, top_p, threshold=threshold, other_top_k=other_top_k)
        split = self._ask(m, ids, cache_key, question).split

        def describe(token_ids, token_probs):
            return [wire.wheel_token(t, m.token_text(t), p) for t, p in zip(token_ids, token_probs)]

        return wire.distribution(
            above=describe(split.above_ids, split.above_probs),
            other_total=split.other_total,
            other_count=split.other_count,
            other_samples=describe(split.other_sample_ids, split.other_sample_probs),
            above_total=split.above_total,
            excluded=split.excluded_count,
            vocabulary_size=split.vocabulary_size,
        )

    def op_choose(
        self, model, ids, mode, token_id=None, threshold=0.01, temperature=1.0, top_p=1.0, seed=None, cache_key=None,
        prefetch=False,
    ) -> dict:
        """Pick the next token: ``token`` (the one given), ``other`` (draw within
        Other), ``sample`` (a spin of the whole wheel) or ``greedy``; with the
        whole text after it. ``prefetch``: queue the forward after the chosen
        token now (see :meth:`.batcher.Batcher.prefetch`)."""
        m = self.get(model)
        if mode not in ("token", "other", "sample", "greedy"):
            raise ModelError("bad_request", f"unknown mode {mode!r}", 400)
        if mode == "token":
            m.check_ids([token_id])
        question = Question(
            temperature, top_p, threshold=threshold, pick=mode, token_id=token_id,
            generator=sampling.make_generator(seed), top_n=1,
        )
        answer = self._ask(m, ids, cache_key, question)
        if answer.other_empty:
            raise ModelError("other_empty", answer.other_empty, 400)
        chosen = answer.chosen
        result = wire.choice(chosen, m.token_text(chosen), answer.probability, threshold)
        result["greedy_token_id"] = answer.top[0][0]  # did the choice follow the model's top token?
        if result["category"] == "other":
            result.update(wire.other_info(answer.split.other_total, answer.split.other_count, answer.rank_in_other))
        if prefetch:
            m.batcher.prefetch([*ids, chosen], cache_key)
        result["text"] = m.decode([*ids, chosen])
        return result

    def op_rank(self, model, ids, token_id, threshold=0.01, temperature=1.0, top_p=1.0, cache_key=None) -> dict:
        """Where ``token_id`` stands in the distribution: its probability, its
        rank among all tokens, its wheel category; and the model's top token."""
        m = self.get(model)
        m.check_ids([token_id])
        question = Question(temperature, top_p, pick="token", token_id=token_id, top_n=1, rank=True)
        answer = self._ask(m, ids, cache_key, question)
        (top, top_probability), = answer.top
        return {
            **wire.choice(token_id, m.token_text(token_id), answer.probability, threshold),
            "rank": answer.rank,
            "top_token": wire.token(top, m.token_text(top), top_probability),
        }

    # ---- generation

    def op_continue(
        self, model, ids, n, mode="greedy", temperature=1.0, top_p=1.0, top_k=0, seed=None, cache_key=None
    ) -> dict:
        """Continue ``ids`` by up to ``n`` tokens without changing any session."""
        m = self.get(model)
        # One generator for the whole continuation: its draws go on from each other.
        question = Question(
            temperature, top_p, top_k, pick="greedy" if mode == "greedy" else "sample",
            generator=sampling.make_generator(seed),
        )
        ids = list(ids)
        tokens = []
        for _ in range(int(n)):
            answer = self._ask(m, ids, cache_key, question, follow_up=True)
            chosen = answer.chosen
            tokens.append(wire.token(chosen, m.token_text(chosen), answer.probability))
            ids.append(chosen)
            if chosen in m.eos_ids:
                break
        if cache_key:
            m.release(cache_key)
        return wire.continuation(tokens, m.decode([t["token_id"] for t in tokens]))

    def op_next_token(
        self,
        model,
        ids,
        temperature=1.0,
        top_k=0,
        top_p=1.0,
        context_window=None,
        chosen_token_id=None,
        greedy=False,
        seed=None,
        top_n=10,
        cache_key=None,
    ) -> dict:
        """One step of a playground stream: the model sees only the last
        ``context_window`` tokens of ``ids``; the next token is sampled (or
        greedy, or the one chosen by hand)."""
        m = self.get(model)
        window = min(int(context_window or m.max_context), m.max_context)
        start = max(0, len(ids) - window)
        visible = list(ids[start:])
        if chosen_token_id is not None:
            m.check_ids([chosen_token_id])
        question = Question(
            temperature, top_p, top_k,
            pick="token" if chosen_token_id is not None else "greedy" if greedy else "sample",
            token_id=chosen_token_id, generator=sampling.make_generator(seed), top_n=int(top_n),
        )
        answer = self._ask(m, visible, cache_key, question, follow_up=True)
        chosen = answer.chosen
        return wire.playground_step(
            wire.token(chosen, m.token_text(chosen), answer.probability),
            top=[wire.top_entry(t, m.token_text(t), q) for t, q in answer.top],
            context_start=start,
            # What the model saw, for the playground's "in view" display
            # (decoded here because web code has no tokenizer).
            context_tokens=len(visible),
            context_text=m.decode(visible),
            eos=chosen in m.eos_ids,
        )
