"""The one exception type that the CLI turns into a one-line message instead of a traceback."""


class EcgPlatformError(Exception):
    """A problem the user can fix (bad path, bad record id, bad option): its message says how."""
