"""The one exception type that the command line turns into a one-line message."""


class SyqError(Exception):
    """A user-facing error: the message names the file, node or layer and what to do.

    The command line prints it as a single line and exits with a non-zero code; library callers
    can catch it like any other exception.
    """
