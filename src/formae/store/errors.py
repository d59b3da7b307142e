"""The one exception the datastore raises, and the URL masking its messages rely on.

Callers (the agent, the API) should never have to know which driver sits underneath, so every
sqlite3 / asyncpg / OS error is translated into ``StoreError`` at the store's edge::

    Exception
     ├── StoreError        the store could not do what was asked; the message names the URL
     │    │                (password masked) and the operation that failed
     │    └── StoreUnavailable   ... because the database is (for now) out of reach: a full disk,
     │                           refused connections, a statement timeout. Worth retrying later.
     └── JoinRefused       a join token is unknown, spent or expired (the store worked fine)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_SECRET_QUERY_KEYS = frozenset({"password", "passfile", "sslpassword"})


class StoreError(Exception):
    """The datastore could not be opened, read or written."""


class StoreUnavailable(StoreError):
    """The database is out of reach or out of space for now; the same write may well succeed later."""


class JoinRefused(Exception):
    """A join token cannot be redeemed; the message says why, without the secret."""


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, so that it can go into logs and errors."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    netloc, query = parts.netloc, parts.query
    userinfo, at, hostport = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = f"{userinfo.split(':', 1)[0]}:***@{hostport}"
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(k.lower() in _SECRET_QUERY_KEYS for k, _ in pairs):
        query = urlencode([(k, "***" if k.lower() in _SECRET_QUERY_KEYS else v) for k, v in pairs])
    if (netloc, query) == (parts.netloc, parts.query):
        return url  # urlunsplit would turn sqlite:///path into sqlite:/path
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


@contextmanager
def translated(
    driver_errors: tuple[type[Exception], ...],
    what: str,
    unavailable: Callable[[Exception], bool] = lambda _: False,
) -> Iterator[None]:
    """Turn a driver's exception into a ``StoreError`` saying ``what`` failed.

    ``unavailable`` tells an outage (``StoreUnavailable``: retry later) from a refused statement.
    ``what`` must already name the (masked) URL; the driver's own message is appended because
    it is usually the useful part ("database or disk is full", "connection refused").
    """
    try:
        yield
    except StoreError:
        raise
    except driver_errors as error:
        detail = str(error) or type(error).__name__
        kind = StoreUnavailable if unavailable(error) else StoreError
        raise kind(f"{what}: {detail}") from error
