"""Correlation ids: one id per HTTP request, carried into every task it publishes and every log
line of the producer and of the worker that runs the task.

The producer takes the id from the ``X-Request-ID`` header (or makes one), keeps it in a context
variable for the request, and a ``before_task_publish`` handler copies it into the task message's
headers (``request_id``). On the worker, ``task_prerun``/``task_postrun`` handlers set and clear
the same context variable from the message, and :class:`RequestIdFilter` puts it on every log
record as ``%(request_id)s`` (``-`` outside a request or task).
"""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from collections import OrderedDict

from celery.signals import before_task_publish, task_postrun, task_prerun
from celery.worker.request import Request

#: Message header and log record attribute that carry the id.
HEADER = "request_id"

#: HTTP header the producer reads the id from and echoes back.
HTTP_HEADER = "X-Request-ID"

#: What an id received over HTTP may look like: 1 to 128 of letters, digits, ``.``, ``_``, ``-``
#: (UUIDs and most tracing ids fit). Anything else is replaced, never logged as given.
VALID_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("fleet_request_id", default=None)


def current() -> str | None:
    """The correlation id of the request or task being handled, or None outside one."""
    return _current.get()


def bind(request_id: str | None) -> contextvars.Token:
    """Make ``request_id`` the current id; returns the token :func:`unbind` takes."""
    return _current.set(request_id)


def unbind(token: contextvars.Token) -> None:
    """Restore the id that was current before the matching :func:`bind`."""
    _current.reset(token)


def from_http(value: str | None) -> str:
    """The id to use for an HTTP request.

    Args:
        value: The ``X-Request-ID`` header as received, or None when absent.

    Returns:
        ``value`` when it matches :data:`VALID_ID`, else a new UUID4 string (an absent, empty,
        too long or oddly shaped header is replaced, so log lines cannot be forged through it).
    """
    if value and VALID_ID.fullmatch(value):
        return value
    return str(uuid.uuid4())


#: Task id -> correlation id of the messages the worker's main process has received lately, for
#: the lines it logs about a task outside the task's own run ("Task ... received"). Bounded.
_received: OrderedDict[str, str] = OrderedDict()
_RECEIVED_MAX = 10_000


class TaskRequest(Request):
    """Celery's worker-side request, remembering each message's correlation id by task id.

    Set as ``Request`` of the app's task base class (``fleet.tasks.TolerantTask``).
    """

    def __init__(self, message, *args, **kwargs):
        """Build the request as Celery does, then note ``task id -> request_id``."""
        super().__init__(message, *args, **kwargs)
        request_id = (message.headers or {}).get(HEADER)
        if request_id:
            _received[self.id] = request_id
            while len(_received) > _RECEIVED_MAX:
                _received.popitem(last=False)


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` to every record it sees: the current id, else the id of the
    task the record is about (Celery's "received" line carries the task in ``record.data``),
    else ``-``.

    Attach it to handlers (not loggers) so records from every logger get the attribute.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Set the attribute; never drops a record."""
        data = getattr(record, "data", None)
        task_id = data.get("id") if isinstance(data, dict) else None
        record.request_id = current() or (_received.get(task_id) if task_id else None) or "-"
        return True


def install_log_filter(logger: logging.Logger) -> None:
    """Attach one :class:`RequestIdFilter` to each handler of ``logger`` that lacks one."""
    for handler in logger.handlers:
        if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
            handler.addFilter(RequestIdFilter())


@before_task_publish.connect
def _add_request_id_header(headers: dict | None = None, **_kwargs) -> None:
    """Copy the current id into the outgoing task message, unless the caller set one."""
    request_id = current()
    if headers is not None and request_id and not headers.get(HEADER):
        headers[HEADER] = request_id


_task_tokens: dict[str, contextvars.Token] = {}


@task_prerun.connect
def _bind_task_request_id(task_id: str | None = None, task=None, **_kwargs) -> None:
    """Make the id of the message being run current for the task's log lines."""
    request_id = getattr(task.request, HEADER, None) if task is not None else None
    if request_id is None and task is not None:
        request_id = (getattr(task.request, "headers", None) or {}).get(HEADER)
    if task_id is not None:
        _task_tokens[task_id] = bind(request_id)


@task_postrun.connect
def _unbind_task_request_id(task_id: str | None = None, **_kwargs) -> None:
    """Restore the id that was current before the task ran."""
    token = _task_tokens.pop(task_id, None) if task_id is not None else None
    if token is not None:
        unbind(token)
