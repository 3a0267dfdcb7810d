"""The one exception the shared rules raise.

A rule knows what is wrong and which field it is about, not who asked: the
services re-raise it as ``InvalidArgument`` (an INVALID_ARGUMENT status), the
SDK as ``InvalidArgumentError``. A ``ValueError``, so a configuration parser
that reports ValueErrors in one line reports these too.
"""

from __future__ import annotations


class InvalidValue(ValueError):
    """A value breaks one of Depot's rules; ``field`` names the input it came from."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
