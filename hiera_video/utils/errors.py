"""Errors a user can cause and fix, and how the command-line tools report them.

Library code raises a :class:`UserError` subclass (often also a built-in type, so ``except ValueError``
keeps working) for a mistake in what the user gave: a path, a file's content, a setting, a machine that
lacks what the config asks for. :func:`run_cli` turns one into a single ``error:`` line and a non-zero
exit; any other exception is a bug in the toolkit and keeps its traceback. ``--debug`` or
``HIERA_VIDEO_DEBUG=1`` shows the traceback of user errors too.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Callable, NoReturn

DEBUG_VARIABLE = "HIERA_VIDEO_DEBUG"


class UserError(Exception):
    """A mistake in the user's input (path, file content, setting, environment) with a message saying what,
    where and what to do."""


class MissingInputError(UserError, FileNotFoundError):
    """A file or folder the user named (or a config points to) does not exist."""


class EnvironmentMismatchError(UserError, RuntimeError):
    """The config asks for something this machine does not have (CUDA, a device count, an extra package)."""


def debug_requested(argv: list[str] | None = None) -> bool:
    """Whether tracebacks were asked for: ``--debug`` on the command line or HIERA_VIDEO_DEBUG=1."""
    argv = sys.argv[1:] if argv is None else argv
    return "--debug" in argv or os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")


def exit_with_error(message: str, status: int = 1) -> NoReturn:
    """Print ``error: message`` (one line per line of the message, the first prefixed) and exit."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(status)


def run_cli(main: Callable[[], Any], status: int = 1) -> Any:
    """Run a tool's ``main`` and return what it returns (its exit status); a :class:`UserError`, or an OSError about a named file (missing, unreadable,
    a full disk), ends in one ``error:`` line and exit ``status``; the traceback only when
    :func:`debug_requested`."""
    try:
        return main()
    except UserError as error:
        if debug_requested():
            raise
        exit_with_error(str(error), status)
    except OSError as error:
        if debug_requested() or error.filename is None:
            raise
        exit_with_error(f"{error.strerror or error}: {os.fsdecode(error.filename)}", status)
    except KeyboardInterrupt:
        exit_with_error("interrupted", 130)
