"""The one exception type the CLI and services turn into a clear message."""


class WorkbenchError(Exception):
    """An error a person can act on: what was wrong, and what to do about it."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  what to do: {self.hint}" if self.hint else self.message


class NotFound(WorkbenchError):
    """A named user, dataset, grant or job does not exist."""
