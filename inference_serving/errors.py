"""The one error type of every command: a message for the user and the exit status it ends with.

Exit statuses (README "Errors and exit codes"): 2 for bad input (a flag, file, row or key the user can
fix), 1 for an engine or internal failure; cli/command.py prints `error: <message>` on one line of
stderr and exits with the error's status, for every command.
"""
from __future__ import annotations

BAD_INPUT = 2
FAILURE = 1


class SimError(Exception):
    """A failure with its exit status; subclasses only fix the status."""

    exit_code = FAILURE


class InputError(SimError):
    """A flag, file, row or key that cannot be used."""

    exit_code = BAD_INPUT


class EngineError(SimError):
    """The engine failed, exited early, or did not answer in time; or the simulation cannot go on."""

    exit_code = FAILURE
