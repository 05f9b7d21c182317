"""The two errors a command reports as one line before anything runs
(``cli.cli_main`` turns them into exit statuses 2 and 1)."""


class UsageError(ValueError):
    """A flag or path the user can fix before anything runs (exit status 2)."""


class InputError(Exception):
    """Input found unusable before the run starts (exit status 1)."""
