"""Every exception synthgen raises on purpose. Each message says what is wrong and how to fix it."""

from __future__ import annotations

from dataclasses import dataclass


class SynthgenError(Exception):
    """Base class: a problem the user can act on (the CLI prints it as one line)."""


@dataclass(frozen=True)
class Problem:
    """One validation finding: which column (of which table, among several), which rule it breaks, and the fix."""

    column: str | None
    rule: str
    fix: str
    table: str | None = None

    def __str__(self) -> str:
        where = f"column {self.column!r}: " if self.column is not None else ""
        if self.table is not None:
            where = f"table {self.table!r}, {where}" if where else f"table {self.table!r}: "
        return f"{where}{self.rule} (fix: {self.fix})"


class InvalidDataError(SynthgenError):
    """The input table breaks one or more rules; ``problems`` lists all of them at once."""

    def __init__(self, problems: list[Problem] | Problem):
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        lines = [str(p) for p in self.problems]
        head = "invalid data" if len(lines) == 1 else f"invalid data ({len(lines)} problems)"
        super().__init__(head + ": " + "; ".join(lines))


class ConfigError(SynthgenError):
    """A bad option or hyperparameter (unknown model, negative epochs, ...)."""

    #: every problem, where a check of several settings lists them (set only there: k-anonymity settings)
    problems: list[Problem]


class NotFittedError(SynthgenError):
    """A method that needs a fitted object was called before ``fit``."""


class PrivacyError(SynthgenError):
    """A privacy setting cannot be honoured."""


class IntegrityError(SynthgenError):
    """A file is corrupt, tampered with, or of an unsupported format version."""


class OutputExistsError(SynthgenError):
    """Refusing to overwrite a file the user already has."""


class SynthgenWarning(UserWarning):
    """Base class of synthgen's own warnings: something the user should know, each with what was done."""


class IdentifierWarning(SynthgenWarning):
    """A column that looks like a direct identifier (email, name, ...) is about to be trained on unmasked."""


class DataWarning(SynthgenWarning):
    """synthgen changed how a column is represented (e.g. mixed time zones converted to UTC) and says so."""


class SignatureWarning(SynthgenWarning):
    """A signature was accepted on weaker terms the caller allowed (a renamed file, a version 1 signature)."""


class TrainingInterrupted(SynthgenError):
    """Training stopped on request (Ctrl-C) after saving a checkpoint; resume from it."""
