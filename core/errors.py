"""Errors a user can act on. The CLI prints them as one line, with no traceback."""


class UserError(Exception):
    """A mistake in the input or the options; the message says what to change."""
