"""The one exception type for invalid user input."""


class ConfigError(ValueError):
    """An option or argument value that freezebench cannot use.

    The message names the value received and what would be valid. Entry points
    (pytest options, report command) print it without a traceback.
    """
