"""Errors that tell the user what is wrong, where, and how to fix it."""

from __future__ import annotations

from pathlib import Path


class BenchError(RuntimeError):
    """Base class for every error the suite raises on purpose (bad input, missing files)."""


class DataError(BenchError):
    """A data file is missing or malformed: names the file, line, field and the fix."""

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.file, self.line, self.field, self.fix = file, line, field, fix
        where = ""
        if file is not None:
            where = f"{file}"
            if line is not None:
                where += f":{line}"
            if field is not None:
                where += f" (field {field!r})"
            where += ": "
        text = where + message
        if fix:
            text += f"\n  fix: {fix}"
        super().__init__(text)


class MissingDataError(DataError):
    """A split a run needs is not in the prepared data (a known gap of the local mirror); names the fetch command."""


class MissingWeightsError(BenchError):
    """Model weights are neither in the hub cache nor at a local path, and the hub is unreachable."""


class ConfigError(BenchError):
    """A composed configuration asks for something that cannot work (e.g. a method x family pair)."""
