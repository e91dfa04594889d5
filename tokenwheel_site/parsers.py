"""Request parsers of the API.

DRF's JSONParser turns malformed JSON into a 400 but lets a RecursionError
through: a 100 KB body of nested brackets (``[[[[...]]]]``) was a 500 on
every endpoint. Too deep is malformed too.
"""

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply.") from None
