"""The one exception type preforch raises for bad input; the CLI prints its message on one line."""


class PreforchError(ValueError):
    """Bad input or a bad artifact. The message names the file, row or column and what was expected."""
