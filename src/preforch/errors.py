"""The one exception type preforch raises for bad input; the CLI prints its message on one line."""


class PreforchError(ValueError):
    """Bad input or a bad artifact. The message names the file, row or column and what was expected."""


def setting_hint(name: str, value: str) -> str:
    """How a user sets ``name`` to ``value``, as every error message says it: the command-line flag that
    :func:`preforch.config.add_config_args` makes of the setting, and the YAML key."""
    return f"--{name.replace('_', '-')} ({name}: {value})"
