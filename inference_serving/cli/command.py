"""How every command ends: one line on stderr and the exit status of errors.py, never a traceback.

`Command` and `Group` are click's classes with that ending: a bad flag (click's usage errors),
a SimError, an interrupt (Ctrl-C, or SIGTERM as `timeout` and job schedulers send it) and any
other failure become `error: <message>` on one line of stderr. SIGTERM is turned into an
exception, so the `finally` blocks that remove work folders and stop the engine run as they do
for Ctrl-C. Standard output closed early (`... | head -1`) does not stop a command: the rest of
its output is dropped and its files are still written (console.py). At exit the objects are left to the
end of the process (frozen) instead of being searched for cycles and freed one by one: about 0.07 s of
a 0.4 s run (README "Speed"), for every entry point (main.py, `python -m`, the `llmservingsim` script).
"""
from __future__ import annotations

import atexit
import errno
import gc
import os
import signal
import sys
import threading

import click

from ..errors import BAD_INPUT, FAILURE, InputError, SimError
from .console import pipe_safe_stdout

INTERRUPTED, TERMINATED = 128 + signal.SIGINT, 128 + signal.SIGTERM
DEBUG = "LLMSERVINGSIM_DEBUG"  # set: internal failures show their traceback
# a file system error about a path, which is one the user named or one made from it: bad input
PATH_ERRORS = {errno.ENAMETOOLONG, errno.ELOOP, errno.ENOTDIR, errno.EISDIR, errno.EACCES, errno.EPERM, errno.EROFS}


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is so that it unwinds like an interrupt."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def _fail(message: str, status: int) -> None:
    click.echo(f"error: {_one_line(message)}", err=True)
    raise click.exceptions.Exit(status)


def _invoke_reporting(invoke, ctx: click.Context):
    try:
        return invoke(ctx)
    except (click.exceptions.Exit, click.ClickException, click.Abort):
        raise
    except SimError as err:
        _fail(str(err), err.exit_code)
    except Terminated:
        _fail("terminated (SIGTERM); partial results, if any, were kept", TERMINATED)
    except KeyboardInterrupt:
        _fail("interrupted; partial results, if any, were kept", INTERRUPTED)
    except Exception as err:  # noqa: BLE001 - the last resort: one line instead of a traceback
        if os.environ.get(DEBUG):
            raise
        if isinstance(err, OSError) and err.filename is not None and err.errno in PATH_ERRORS:
            _fail(f"{err.filename}: {err.strerror}", BAD_INPUT)
        _fail(f"internal: {type(err).__name__}: {err} (set {DEBUG}=1 for the traceback)", FAILURE)


def _main_reporting(main, args, prog_name, kwargs) -> None:
    """click's main without its standalone ending; exits with the status of the error, if any."""
    kwargs.pop("standalone_mode", None)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if main_thread else None
    try:
        with pipe_safe_stdout():
            status = main(args, prog_name, standalone_mode=False, **kwargs)
    except click.exceptions.NoArgsIsHelpError as err:  # `llmservingsim` alone: its help, as for --help
        click.echo(err.format_message())
        status = 0
    except click.ClickException as err:
        click.echo(f"error: {_one_line(err.format_message())}", err=True)
        status = BAD_INPUT
    except click.Abort:
        click.echo("error: interrupted", err=True)
        status = INTERRUPTED
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    sys.exit(status if isinstance(status, int) else 0)


def from_command_line(name: str) -> bool:
    """Whether the running command's parameter `name` was given (on the command line or by the
    environment), not left at its default."""
    source = click.get_current_context().get_parameter_source(name)
    return source not in (None, click.core.ParameterSource.DEFAULT)


def refuse_unread(flags: dict[str, str], reason: str) -> None:
    """Flags (parameter name -> spelling) that the command would not read in this call are refused;
    `reason` completes "... has no effect", e.g. "with --ray (the cluster runs them all at once)"."""
    unread = [spelling for name, spelling in flags.items() if from_command_line(name)]
    if unread:
        many = len(unread) > 1
        raise InputError(f"{' and '.join(unread)} {'have' if many else 'has'} no effect {reason}; "
                         f"leave {'them' if many else 'it'} out")


class Command(click.Command):
    def main(self, args=None, prog_name=None, **kwargs):
        atexit.register(gc.freeze)
        _main_reporting(super().main, args, prog_name, kwargs)

    def invoke(self, ctx: click.Context):
        return _invoke_reporting(super().invoke, ctx)


class Group(click.Group):
    command_class = Command

    def main(self, args=None, prog_name=None, **kwargs):
        _main_reporting(super().main, args, prog_name, kwargs)

    def invoke(self, ctx: click.Context):
        return _invoke_reporting(super().invoke, ctx)
