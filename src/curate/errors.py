"""The one exception type a user can cause."""


class CurateError(Exception):
    """A problem with the user's input or project: the message names the file, line or
    field, says what is wrong and how to fix it. The CLI prints it on one line and exits 2."""
