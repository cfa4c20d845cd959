"""Text that goes into one-line places (an email subject, a log line, a calendar title)."""

import re

_BREAKS = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")


def one_line(text: str) -> str:
    """``text`` as one line: each run of control characters (line breaks, tabs, NUL ...)
    becomes one space, and the ends are trimmed."""
    return re.sub(r" {2,}", " ", _BREAKS.sub(" ", str(text))).strip()
