"""Output serializers used as pure functions.

Making a DRF serializer deep-copies its declared fields, and its nested
serializers' (each copy runs the field's ``__init__`` again): on the wheel's
busiest responses that copying was about a tenth of the web process's time
under a class. An output serializer keeps no state between objects, so each
class is made once here and its ``to_representation`` (DRF's documented
hook) renders every object. Only for output: input serializers validate,
and keep their errors on the instance.
"""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=None)
def _shared(serializer_class, many: bool):
    return serializer_class(many=many)


def render(serializer_class, instance, many: bool = False):
    """``serializer_class(instance, many=many).data``, as plain dicts and lists."""
    return _shared(serializer_class, many).to_representation(instance)
