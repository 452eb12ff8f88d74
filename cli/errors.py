"""One way for every command to fail: a single line on stderr and a non-zero exit.

Commands call ``fail`` for what they can foresee (an unknown version, a refused call); the
entry point turns the failures of the world outside (no service listening, no database, a
missing file, a file that is not JSON) into one line as well. ``lhs --debug`` (or LHS_DEBUG=1)
shows the traceback instead.
"""

from __future__ import annotations

import json
from typing import NoReturn

import httpx
import typer
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

FORESEEN = (ValidationError, httpx.HTTPError, OSError, json.JSONDecodeError, SQLAlchemyError)
"""Failures a user can act on from the message alone (no traceback hint)."""


def fail(message: str, exit_code: int = 1) -> NoReturn:
    """Say what went wrong on stderr, in one line, and exit."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(exit_code)


def fail_usage(message: str) -> NoReturn:
    """A command given something it cannot use (an unknown id, a malformed value): exit 2."""
    fail(message, exit_code=2)


def one_line(error: BaseException) -> str:
    """What went wrong, in words a user can act on."""
    match error:
        case httpx.ConnectError() | httpx.ConnectTimeout():
            return (
                f"cannot reach {_origin(error)}: is the service running? "
                "(start it with `make run` or `lhs serve`)"
            )
        case httpx.HTTPError():
            return f"HTTP request failed: {error}"
        case FileNotFoundError() | IsADirectoryError() | PermissionError():
            return f"{error.strerror.lower() if error.strerror else error}: {error.filename}"
        case json.JSONDecodeError():
            return f"not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        case ValidationError() if error.title == "Settings":
            problems = "; ".join(
                f"LHS_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
                for e in error.errors()
            )
            return f"invalid setting: {problems}"
        case SQLAlchemyError():
            reason = str(getattr(error, "orig", None) or error).splitlines()[0]
            return (
                f"database error: {reason} (is LHS_DATABASE_URL right, and `lhs db upgrade` run?)"
            )
        case _:
            return f"{type(error).__name__}: {error}"


def _origin(error: httpx.RequestError) -> str:
    try:
        url = error.request.url
    except RuntimeError:  # raised before a request was built
        return "the service"
    return f"{url.scheme}://{url.netloc.decode()}"
