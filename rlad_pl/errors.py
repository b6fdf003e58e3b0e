"""Errors the command line reports as one line (no traceback)."""


class ConfigError(ValueError):
    """A bad configuration value; the message is one line naming the key, the bad value and what
    is allowed."""
