"""Input serializers validate; output serializers document (OpenAPI)."""

from django.conf import settings
from rest_framework import serializers
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from wheel.serializers import ErrorOut, FiniteFloatField, StrictIntegerField  # noqa: F401 (ErrorOut: one schema component)


class GenerateNextTokenIn(serializers.Serializer):
    """The seed's request, plus optional sampling controls."""

    session_id = serializers.CharField(
        max_length=100,
        help_text="A wheel session id, a saved playground run id, or the stream_id of a live playground websocket.",
    )
    context = serializers.CharField(trim_whitespace=False, max_length=settings.PLAYGROUND.get("MAX_INPUT_CHARS", 4000))
    temperature = FiniteFloatField(min_value=0.01, max_value=settings.WHEEL["MAX_TEMPERATURE"], required=False, default=None)
    top_k = StrictIntegerField(min_value=0, max_value=1_000_000, required=False, default=0)
    top_p = FiniteFloatField(min_value=1e-6, max_value=1.0, required=False, default=None)
    context_window = StrictIntegerField(min_value=1, max_value=1_000_000, required=False, default=None)
    greedy = serializers.BooleanField(required=False, default=False)
    seed = StrictIntegerField(min_value=0, max_value=2**63 - 1, required=False, default=None)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Lone surrogates are left to the tokenizer: the seed answers text it
        # cannot represent with "Unknown characters: [...]", not a generic 400.
        field = self.fields["context"]
        field.validators = [v for v in field.validators if not isinstance(v, ProhibitSurrogateCharactersValidator)]


class ProbabilityOut(serializers.Serializer):
    token = serializers.CharField()
    prob = serializers.FloatField()
    token_id = serializers.IntegerField()


class GenerateNextTokenOut(serializers.Serializer):
    next_token = serializers.CharField()
    next_token_id = serializers.IntegerField()
    probability = serializers.FloatField()
    probabilities = ProbabilityOut(many=True, help_text="The top 10, most probable first.")
    context_used = serializers.CharField(help_text="The text the model saw (the last context_window tokens).")
    context_tokens = serializers.IntegerField()
    model = serializers.CharField()


class RunSummaryOut(serializers.Serializer):
    id = serializers.UUIDField()
    title = serializers.CharField(allow_blank=True)
    model = serializers.CharField()
    input_text = serializers.CharField()
    generated_text = serializers.CharField()
    tokens = serializers.IntegerField()
    hand_chosen = serializers.IntegerField()
    finished_reason = serializers.CharField(allow_blank=True)
    owner = serializers.CharField(allow_null=True)
    classroom_id = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()


class RunListOut(serializers.Serializer):
    runs = RunSummaryOut(many=True)


class RunTokenOut(serializers.Serializer):
    token_id = serializers.IntegerField()
    token = serializers.CharField()
    probability = serializers.FloatField()
    chosen_by = serializers.ChoiceField(choices=["model", "hand"])
    probabilities = ProbabilityOut(many=True)


class RunDetailOut(RunSummaryOut):
    prompt_token_ids = serializers.ListField(child=serializers.IntegerField())
    settings = serializers.DictField()
    token_list = RunTokenOut(many=True)


class RunDeletedOut(serializers.Serializer):
    deleted = serializers.BooleanField()
    run_id = serializers.UUIDField()
