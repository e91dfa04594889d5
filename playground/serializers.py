"""The playground's serializers: the HTTP endpoint's and the websocket's input
(validated with the same field types), and the API's output.

A websocket message is validated by the ``*Message`` serializer of its type
(:func:`playground.protocol.validated` turns its errors into an ``error``
message); a ``null`` there means "the default", as if the field were missing.
"""

from django.conf import settings
from django.core.validators import ProhibitNullCharactersValidator
from rest_framework import serializers
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from common.fields import ErrorOut, FiniteFloatField, StrictCharField, StrictIntegerField  # noqa: F401 (ErrorOut: one schema component)

from .protocol import EMPTY_INPUT

MAX_INPUT_CHARS = settings.PLAYGROUND.get("MAX_INPUT_CHARS", 4000)
MAX_SEED = 2**63 - 1

# --------------------------------------------------------------------------- field types


class StrictBooleanField(serializers.BooleanField):
    """true or false as JSON booleans (not "yes", not 1)."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class TokenizerTextField(serializers.CharField):
    """Text the tokenizer reads, kept as typed (no trimming). Lone surrogates
    pass: the tokenizer answers them with "Unknown characters: [...]" (the
    seed's error), not a generic 400. ``strict``: a number is an error, not text."""

    def __init__(self, *, strict: bool = False, **kwargs):
        self.strict = strict
        super().__init__(trim_whitespace=False, max_length=MAX_INPUT_CHARS, **kwargs)
        kept = [v for v in self.validators if not isinstance(v, (ProhibitSurrogateCharactersValidator, ProhibitNullCharactersValidator))]
        # NUL: PostgreSQL cannot store it (saving the run would fail).
        self.validators = [*kept, ProhibitNullCharactersValidator(message="must not contain NUL characters.")]

    def to_internal_value(self, data):
        if self.strict and not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class IdField(serializers.Field):
    """A database id as a client sends it: a number or a string."""

    default_error_messages = {"invalid": "must be an id."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, str)):
            self.fail("invalid")
        return data

    def to_representation(self, value):
        return value


class SamplingIn(serializers.Serializer):
    """How the next token is drawn: the same fields for the HTTP endpoint and a stream's start."""

    temperature = FiniteFloatField(min_value=0.01, max_value=settings.WHEEL["MAX_TEMPERATURE"], required=False, default=None)
    top_k = StrictIntegerField(min_value=0, max_value=1_000_000, required=False, default=0)
    top_p = FiniteFloatField(min_value=1e-6, max_value=1.0, required=False, default=None)
    seed = StrictIntegerField(min_value=0, max_value=MAX_SEED, required=False, default=None)


# --------------------------------------------------------------------------- HTTP input


class GenerateNextTokenIn(SamplingIn):
    """The seed's request, plus optional sampling controls."""

    session_id = serializers.CharField(
        max_length=100,
        help_text="A wheel session id, a saved playground run id, or the stream_id of a live playground websocket.",
    )
    context = TokenizerTextField()
    context_window = StrictIntegerField(min_value=1, max_value=1_000_000, required=False, default=None)
    greedy = serializers.BooleanField(required=False, default=False)


# --------------------------------------------------------------------------- websocket messages


class SpeedField(StrictIntegerField):
    """Milliseconds between tokens: 0 (as fast as possible) or PLAYGROUND's
    MIN_SPEED_MS..MAX_SPEED_MS (read when a message arrives)."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        pg = settings.PLAYGROUND
        lo, hi = pg["MIN_SPEED_MS"], pg["MAX_SPEED_MS"]
        if value != 0 and not lo <= value <= hi:
            raise serializers.ValidationError(f"must be 0 (as fast as possible) or between {lo} and {hi}, not {value}.")
        return value


class MessageIn(serializers.Serializer):
    """A client message: ``null`` means the default, unless the field allows null."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            fields = self.fields
            data = {k: v for k, v in data.items() if v is not None or getattr(fields.get(k), "allow_null", False)}
        return super().to_internal_value(data)


class ProbabilityIn(MessageIn):
    token_id = StrictIntegerField(min_value=0, required=False, default=0)
    token = StrictCharField(max_length=200, required=False, default="", allow_blank=True, trim_whitespace=False)
    prob = FiniteFloatField(min_value=0.0, max_value=1.0, required=False, default=0.0)


class ResumeTokenIn(MessageIn):
    """A token the client already had (shown again, never used for sampling;
    the model worker checks the id)."""

    token_id = StrictIntegerField(min_value=0)
    probability = FiniteFloatField(min_value=0.0, max_value=1.0, required=False, default=0.0)
    chosen_by = serializers.ChoiceField(choices=["model", "hand"], required=False, default="model")
    probabilities = serializers.ListField(child=ProbabilityIn(), max_length=11, required=False, default=list)


class StartMessage(SamplingIn, MessageIn):
    """``start``: the SamplingIn fields, the text and how the stream plays.
    Class limits apply afterwards (classrooms.policy)."""

    text = TokenizerTextField(strict=True, required=False, allow_blank=True)
    model = StrictCharField(max_length=100, required=False, allow_blank=True, default="")
    greedy = StrictBooleanField(required=False, default=False)
    speed_ms = SpeedField(required=False, default=settings.PLAYGROUND.get("DEFAULT_SPEED_MS", 500))
    # Larger than the model's maximum or the safety limit is capped (and the cap reported in `started`).
    context_window = StrictIntegerField(min_value=1, required=False, default=None)
    max_tokens = StrictIntegerField(min_value=1, required=False, default=None)
    paused = StrictBooleanField(required=False, default=False)
    # Missing: the class acting in the header; null: no class.
    classroom_id = IdField(required=False, allow_null=True)
    lesson_id = IdField(required=False, allow_null=True, default=None)
    # Continuing after a dropped connection: the tokens the client already had.
    resume_tokens = serializers.ListField(child=ResumeTokenIn(), required=False, default=list)

    def validate_resume_tokens(self, value):
        limit = settings.PLAYGROUND["MAX_TOKENS"]
        if len(value) > limit:
            raise serializers.ValidationError(f"at most {limit} tokens.")
        return value

    def validate(self, attrs):
        if not attrs.get("text"):
            raise serializers.ValidationError({"text": serializers.ErrorDetail(EMPTY_INPUT, code="empty_input")})
        return attrs


class StepMessage(MessageIn):
    """``step``: the model's next token, or ``token_id`` chosen by hand (replacing ``index``)."""

    token_id = StrictIntegerField(min_value=0, required=False, default=None)
    index = StrictIntegerField(min_value=0, required=False, default=None)

    def validate(self, attrs):
        if attrs["index"] is not None and attrs["token_id"] is None:
            raise serializers.ValidationError({"index": "needs a token_id: the token to put at that index."})
        return attrs


class SetSpeedMessage(MessageIn):
    speed_ms = SpeedField()


class TokenizeMessage(MessageIn):
    """``tokenize``: how many tokens a text is, for the input's counter."""

    text = TokenizerTextField(strict=True, allow_blank=True)
    model = StrictCharField(max_length=100, required=False, allow_blank=True, default="")
    context_window = StrictIntegerField(min_value=1, required=False, default=None)


class SaveMessage(MessageIn):
    title = StrictCharField(max_length=200, required=False, allow_blank=True, default="")


class LoadMessage(MessageIn):
    run_id = serializers.UUIDField(error_messages={"invalid": "must be the id of a saved run."})


# --------------------------------------------------------------------------- HTTP output (views render through these)


class ProbabilityOut(serializers.Serializer):
    token = serializers.CharField()
    prob = serializers.FloatField()
    token_id = serializers.IntegerField()


class GenerateNextTokenOut(serializers.Serializer):
    # Renders a model worker's next_token result plus the model it ran on.
    next_token = serializers.CharField(source="token_text")
    next_token_id = serializers.IntegerField(source="token_id")
    probability = serializers.FloatField()
    probabilities = ProbabilityOut(many=True, source="top", help_text="The top 10, most probable first.")
    context_used = serializers.CharField(source="context_text", help_text="The text the model saw (the last context_window tokens).")
    context_tokens = serializers.IntegerField()
    model = serializers.CharField()


class RunSummaryOut(serializers.Serializer):
    # Renders a PlaygroundRun.
    id = serializers.UUIDField()
    title = serializers.CharField(allow_blank=True)
    model = serializers.CharField(source="model_name")
    input_text = serializers.CharField()
    generated_text = serializers.CharField()
    tokens = serializers.IntegerField(source="token_count")
    hand_chosen = serializers.IntegerField(source="hand_chosen_count")
    finished_reason = serializers.CharField(allow_blank=True)
    owner = serializers.CharField(source="owner.get_username", allow_null=True)
    classroom_id = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()


class RunListOut(serializers.Serializer):
    runs = RunSummaryOut(many=True)


class RunTokenOut(serializers.Serializer):
    # Not required: a field a stored token lacks is left out rather than failing the response.
    token_id = serializers.IntegerField(required=False)
    token = serializers.CharField(required=False)
    probability = serializers.FloatField(required=False)
    chosen_by = serializers.ChoiceField(choices=["model", "hand"], required=False)
    probabilities = ProbabilityOut(many=True, required=False)


class RunDetailOut(RunSummaryOut):
    prompt_token_ids = serializers.ListField(child=serializers.IntegerField())
    settings = serializers.DictField()
    token_list = RunTokenOut(many=True, source="tokens")


class RunDeletedOut(serializers.Serializer):
    deleted = serializers.BooleanField()
    run_id = serializers.UUIDField()
