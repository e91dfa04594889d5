"""Field types shared by every input serializer (the APIs and the websocket
messages), so a value means the same thing wherever it is sent; and the
error body's schema."""

import math

from rest_framework import serializers


def clean_text(value: str, what: str) -> str:
    """Reject text no database column can hold: NUL bytes and lone surrogates."""
    if "\x00" in value:
        raise serializers.ValidationError(f"{what} must not contain NUL characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise serializers.ValidationError(f"{what} contains characters that are not valid Unicode (lone surrogates).")
    return value


class FiniteFloatField(serializers.FloatField):
    """A float that is a real number: no NaN, no Infinity, no strings that look like them."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("invalid")
        value = super().to_internal_value(data)
        if not math.isfinite(value):
            self.fail("invalid")
        return value


class StrictIntegerField(serializers.IntegerField):
    """An integer given as a JSON number (not a string, not a bool, not 2.5)."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """Text given as a JSON string: a number or a list is an error, not coerced."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class ErrorOut(serializers.Serializer):
    """common.errors.AppError.http_body(): fields beyond these are the error's own."""

    error = serializers.CharField()
    message = serializers.CharField()
