"""Input serializers validate; output serializers document (OpenAPI)."""

from django.conf import settings
from rest_framework import serializers

from common.fields import ErrorOut, FiniteFloatField, StrictCharField, StrictIntegerField, clean_text  # noqa: F401 (ErrorOut: the API's error schema)


SEED_MAX = 2**31 - 1


def seed_field(**kwargs):
    return StrictIntegerField(min_value=0, max_value=SEED_MAX, **kwargs)


class CreateSessionIn(serializers.Serializer):
    model_name = StrictCharField(required=False, allow_blank=False, max_length=100)
    seed = seed_field(required=False, allow_null=True)


class SeedIn(serializers.Serializer):
    seed = seed_field(allow_null=True)


class GuessIn(serializers.Serializer):
    token_id = StrictIntegerField(required=False, min_value=0)
    token_text = StrictCharField(required=False, trim_whitespace=False, max_length=200)

    def validate_token_text(self, value):
        if value == "":
            raise serializers.ValidationError("token_text must not be empty: type your guess.")
        return clean_text(value, "token_text")

    def validate(self, attrs):
        if ("token_id" in attrs) == ("token_text" in attrs):
            raise serializers.ValidationError('Give one of "token_id" or "token_text".')
        return attrs


class SetPromptIn(serializers.Serializer):
    prompt = StrictCharField(trim_whitespace=False, allow_blank=True)

    def validate_prompt(self, value):
        limit = settings.WHEEL["MAX_PROMPT_CHARS"]
        if not value.strip():
            raise serializers.ValidationError("Empty or invalid prompt: type some text first.")
        if len(value) > limit:
            raise serializers.ValidationError(f"The prompt is {len(value)} characters long; the limit is {limit}.")
        return clean_text(value, "The prompt")


def _temperature_field(**kwargs):
    return FiniteFloatField(min_value=None, max_value=None, **kwargs)


class DistributionParamsMixin(serializers.Serializer):
    def validate_threshold(self, value):
        if not (0 < value <= 1):
            raise serializers.ValidationError("threshold must be greater than 0 and at most 1.")
        return value

    def validate_temperature(self, value):
        limit = settings.WHEEL["MAX_TEMPERATURE"]
        if not (0 < value <= limit):
            raise serializers.ValidationError(f"temperature must be greater than 0 and at most {limit}.")
        return value

    def validate_top_p(self, value):
        if not (0 < value <= 1):
            raise serializers.ValidationError("top_p must be greater than 0 and at most 1.")
        return value


class NextTokenProbsIn(DistributionParamsMixin):
    threshold = FiniteFloatField(required=False, default=0.01)
    other_top_k = serializers.IntegerField(required=False, default=10, min_value=0)
    temperature = _temperature_field(required=False, default=1.0)
    top_p = FiniteFloatField(required=False, default=1.0)

    def validate_other_top_k(self, value):
        limit = settings.WHEEL["MAX_OTHER_TOP_K"]
        if value > limit:
            raise serializers.ValidationError(f"other_top_k must be at most {limit}.")
        return value


class AppendTokenIn(DistributionParamsMixin):
    token_id = StrictIntegerField(required=False, min_value=0)
    token_text = StrictCharField(required=False, trim_whitespace=False, max_length=200)
    category = serializers.ChoiceField(choices=["other", "sample"], required=False)
    threshold = FiniteFloatField(required=False)
    temperature = _temperature_field(required=False)
    top_p = FiniteFloatField(required=False)
    seed = StrictIntegerField(required=False, min_value=0, max_value=2**63 - 1)

    def validate_token_text(self, value):
        if value == "":
            raise serializers.ValidationError("token_text must not be empty.")
        return clean_text(value, "token_text")

    def validate(self, attrs):
        if "category" in attrs and ("token_id" in attrs or "token_text" in attrs):
            raise serializers.ValidationError('Give either "category" or a token ("token_id"/"token_text"), not both.')
        if not any(k in attrs for k in ("category", "token_id", "token_text")):
            raise serializers.ValidationError(
                'Give one of "token_id", "token_text" or "category" ("other" for a draw within Other, '
                '"sample" for a spin of the whole wheel).'
            )
        return attrs


class CompareIn(DistributionParamsMixin):
    n = serializers.IntegerField(required=False, default=10, min_value=1)
    temperature = _temperature_field(required=False)
    top_p = FiniteFloatField(required=False)
    seed = StrictIntegerField(required=False, min_value=0, max_value=2**63 - 1)

    def validate_n(self, value):
        limit = settings.WHEEL["MAX_COMPARE_TOKENS"]
        if value > limit:
            raise serializers.ValidationError(f"n must be at most {limit}.")
        return value


class ExportIn(serializers.Serializer):
    format = serializers.ChoiceField(choices=["json", "csv"], required=False, default="json")


# ---- output: views render every response through these (and OpenAPI documents them) ----
# A response that starts like another extends it (its fields come first).

CATEGORIES = ["above_threshold", "other"]
METHODS = ["picked", "other", "spun"]


class GuessOptionOut(serializers.Serializer):  # a token
    token_id = serializers.IntegerField()
    token_text = serializers.CharField()


class ContinuationTokenOut(GuessOptionOut):  # a token and its probability
    probability = serializers.FloatField()


class TokenOut(ContinuationTokenOut):
    log_probability = serializers.FloatField(allow_null=True)


class AtPositionOut(serializers.Serializer):
    position = serializers.IntegerField()


class GuessOut(AtPositionOut, GuessOptionOut):
    typed_text = serializers.CharField(allow_blank=True)
    probability = serializers.FloatField()
    rank = serializers.IntegerField()
    category = serializers.ChoiceField(choices=CATEGORIES)
    is_top = serializers.BooleanField()
    in_top3 = serializers.BooleanField()
    note = serializers.CharField(allow_blank=True, required=False)


class ScoreOut(serializers.Serializer):
    guesses = serializers.IntegerField()
    top1 = serializers.IntegerField()
    top3 = serializers.IntegerField()
    above_threshold = serializers.IntegerField()
    average_probability = serializers.FloatField(allow_null=True)


class GuessMadeOut(serializers.Serializer):
    guess = GuessOut()
    score = ScoreOut()


class GuessOptionsOut(AtPositionOut):
    options = GuessOptionOut(many=True)


class HistoryItemOut(AtPositionOut, TokenOut):
    category = serializers.ChoiceField(choices=CATEGORIES)
    sampled_from_other = serializers.BooleanField()
    method = serializers.ChoiceField(choices=METHODS)
    selected_at = serializers.DateTimeField()
    seed = serializers.IntegerField(allow_null=True)
    guess = GuessOut(allow_null=True, required=False)


class ParamsOut(serializers.Serializer):
    threshold = serializers.FloatField()
    temperature = serializers.FloatField()
    top_p = serializers.FloatField()
    other_top_k = serializers.IntegerField()


class SessionCreatedOut(serializers.Serializer):
    session_id = serializers.UUIDField(source="id")
    model_name = serializers.CharField()
    created_at = serializers.DateTimeField()


class AboutSessionOut(serializers.Serializer):  # the session a response is about
    session_id = serializers.UUIDField()


class SessionOut(AboutSessionOut):
    model_name = serializers.CharField()
    title = serializers.CharField(allow_blank=True)
    initial_prompt = serializers.CharField(allow_blank=True)
    current_text = serializers.CharField(allow_blank=True)
    token_history = HistoryItemOut(many=True)
    generation_count = serializers.IntegerField()
    prompt_token_count = serializers.IntegerField()
    params = ParamsOut()
    saved = serializers.BooleanField()
    forked_from = serializers.UUIDField(allow_null=True)
    created_at = serializers.DateTimeField()
    last_accessed = serializers.DateTimeField()
    seed = serializers.IntegerField(allow_null=True)
    guesses = GuessOut(many=True)
    current_guess = GuessOut(allow_null=True, help_text="The guess made at the current text, if any.")
    predict_score = ScoreOut()


class SetPromptOut(AboutSessionOut):
    current_text = serializers.CharField()
    token_count = serializers.IntegerField()
    message = serializers.CharField()


class OtherOut(serializers.Serializer):  # the Other category
    total_probability = serializers.FloatField()
    token_count = serializers.IntegerField()


class OtherCategoryOut(OtherOut):
    sample_tokens = TokenOut(many=True)


class NextTokenProbsOut(AboutSessionOut):
    model_name = serializers.CharField()
    current_text = serializers.CharField()
    threshold = serializers.FloatField()
    temperature = serializers.FloatField()
    top_p = serializers.FloatField()
    above_threshold_tokens = TokenOut(many=True)
    other_category = OtherCategoryOut()
    total_above_threshold_probability = serializers.FloatField()
    excluded_by_top_p = serializers.IntegerField()
    vocabulary_size = serializers.IntegerField()


class AppendedTokenOut(TokenOut):
    category = serializers.ChoiceField(choices=CATEGORIES)
    method = serializers.ChoiceField(choices=METHODS)
    sampled_from_other = serializers.BooleanField()


class OtherInfoOut(OtherOut):
    selected_token_rank = serializers.IntegerField()


class TextChangedOut(AboutSessionOut):  # a session whose text a token changed
    previous_text = serializers.CharField()


class AppendTokenOut(TextChangedOut):
    appended_token = AppendedTokenOut()
    current_text = serializers.CharField()
    landed_in = serializers.ChoiceField(choices=CATEGORIES, required=False)
    other_category_info = OtherInfoOut(required=False)
    token_history = HistoryItemOut(many=True)
    warnings = serializers.ListField(child=serializers.CharField(), required=False)


class RemovedTokenOut(TokenOut):
    category = serializers.CharField()
    method = serializers.CharField()
    sampled_from_other = serializers.BooleanField()


class UndoOut(TextChangedOut):
    removed_token = RemovedTokenOut()
    current_text = serializers.CharField()
    token_history = HistoryItemOut(many=True)
    message = serializers.CharField()


class DeletedOut(serializers.Serializer):
    message = serializers.CharField()
    session_id = serializers.UUIDField()


class StatisticsOut(AboutSessionOut):
    generation_count = serializers.IntegerField()
    average_probability = serializers.FloatField(allow_null=True)
    other_count = serializers.IntegerField()
    other_frequency = serializers.FloatField(allow_null=True)
    undo_count = serializers.IntegerField()
    perplexity = serializers.FloatField(allow_null=True)
    spun_count = serializers.IntegerField()
    picked_count = serializers.IntegerField()
    other_draw_count = serializers.IntegerField()


class ContinuationOut(serializers.Serializer):
    tokens = ContinuationTokenOut(many=True)
    text = serializers.CharField(allow_blank=True)


class CompareOut(AboutSessionOut):
    current_text = serializers.CharField()
    n = serializers.IntegerField()
    temperature = serializers.FloatField()
    top_p = serializers.FloatField()
    greedy = ContinuationOut()
    sampled = ContinuationOut()


class ModelOut(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    parameters = serializers.CharField(allow_blank=True)
    default = serializers.BooleanField()
    status = serializers.ChoiceField(choices=["not_loaded", "loading", "ready", "unavailable"])
    reason = serializers.CharField(allow_null=True)


class ModelsOut(serializers.Serializer):
    models = ModelOut(many=True)
