"""Log records without what students type.

No log call of ours formats a prompt or a token. An exception's message
can still quote one (a tokenizer's error, a value that failed to parse), and
``log.exception`` writes that message with the traceback. This formatter
keeps each traceback's frames and exception types and withholds the
messages: enough to find a bug, nothing a student wrote.
"""

import logging
import traceback

WITHHELD = "(message withheld: it may quote what a student typed)"


def _format(te: traceback.TracebackException, seen: set) -> list[str]:
    seen.add(id(te))
    lines = []
    if te.__cause__ is not None and id(te.__cause__) not in seen:
        lines += _format(te.__cause__, seen)
        lines.append("\nThe above exception was the direct cause of the following exception:\n\n")
    elif te.__context__ is not None and not te.__suppress_context__ and id(te.__context__) not in seen:
        lines += _format(te.__context__, seen)
        lines.append("\nDuring handling of the above exception, another exception occurred:\n\n")
    lines.append("Traceback (most recent call last):\n")
    lines += te.stack.format()
    lines.append(f"{_type_name(te)}: {WITHHELD}\n")
    return lines


def _type_name(te: traceback.TracebackException) -> str:
    if hasattr(te, "exc_type_str"):  # Python 3.13+, where exc_type is deprecated
        return te.exc_type_str
    kind = te.exc_type
    if kind is None:
        return "Exception"
    module = kind.__module__
    return kind.__qualname__ if module in ("builtins", "__main__") else f"{module}.{kind.__qualname__}"


class PrivateFormatter(logging.Formatter):
    def formatException(self, ei):
        te = traceback.TracebackException(*ei, capture_locals=False)
        return "".join(_format(te, set())).rstrip("\n")
