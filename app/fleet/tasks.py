"""The demo tasks. Each returns where it ran, so routing can be observed from the outside.

Every task returns at least ``{"hostname", "queue", "task_id"}``: ``queue`` is the routing key the
message was *delivered* with (read from the delivery info, not from configuration), so a
misrouted task shows up as a mismatch instead of being papered over.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import socket
import time

from celery import Task, shared_task
from celery.utils.log import get_task_logger

log = get_task_logger(__name__)


class TolerantTask(Task):
    """Base class of the demo tasks: a keyword argument this version does not take is dropped
    with a warning instead of failing the task with ``TypeError``.

    Producers and workers are upgraded at different times. A message from a newer producer may
    carry a field this worker does not know yet; one from an older producer may lack a field
    added since, which every task gives a default for. Either way the task runs. Positional
    arguments are not filtered: new fields are added as keyword arguments.
    """

    #: Worker-side request class that remembers each message's correlation id (fleet.correlation).
    Request = "fleet.correlation:TaskRequest"

    def __call__(self, *args, **kwargs):
        """Run the task with the keyword arguments its ``run`` accepts; log the others."""
        params = inspect.signature(self.run).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        unknown = [] if takes_any else sorted(set(kwargs) - set(params))
        if unknown:
            log.warning("%s: ignoring arguments this version does not take: %s", self.name, unknown)
            kwargs = {k: v for k, v in kwargs.items() if k not in unknown}
        return super().__call__(*args, **kwargs)


def where(task) -> dict:
    """Describe where ``task`` is running.

    Args:
        task: A bound Celery task (``self`` inside a ``bind=True`` task).

    Returns:
        ``{"hostname": str, "queue": str | None, "task_id": str, "worker": str, "pid": int,
        "redelivered": bool}``; ``worker`` is the Celery node name (``email@worker1``).
    """
    info = task.request.delivery_info or {}
    return {
        "hostname": socket.gethostname(),
        "queue": info.get("routing_key"),
        "task_id": task.request.id,
        "worker": task.request.hostname,
        "pid": os.getpid(),
        "redelivered": bool(info.get("redelivered", False)),
    }


@shared_task(bind=True, base=TolerantTask, name="fleet.tasks.ping")
def ping(self) -> dict:
    """No-op task: returns where it ran."""
    log.info("pong")
    return where(self)


@shared_task(bind=True, base=TolerantTask, name="fleet.tasks.send_email")
def send_email(self, to: str, subject: str = "", duration: float = 0.2) -> dict:
    """I/O-like task: waits ``duration`` seconds as a mail server round trip would.

    Args:
        to: Recipient address (not contacted: nothing is sent).
        subject: Subject line, echoed back.
        duration: Seconds to wait, 0 to 60.

    Raises:
        ValueError: ``duration`` outside 0..60.
    """
    if not 0 <= duration <= 60:
        raise ValueError("duration must be between 0 and 60 seconds")
    log.info("sending mail to %s", to)
    started_at = time.time()
    time.sleep(duration)
    # Epoch seconds: tasks whose [started_at, finished_at] overlap ran at the same time.
    return {**where(self), "to": to, "subject": subject, "started_at": started_at, "finished_at": time.time()}


@shared_task(bind=True, base=TolerantTask, name="fleet.tasks.render_report")
def render_report(self, rounds: int = 20000) -> dict:
    """CPU-like task: ``rounds`` chained SHA-256 digests.

    Args:
        rounds: Number of digests, 1 to 10,000,000 (about 1 µs each here).

    Raises:
        ValueError: ``rounds`` out of range.
    """
    if not 1 <= rounds <= 10_000_000:
        raise ValueError("rounds must be between 1 and 10000000")
    digest = b"fleet"
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest()
    return {**where(self), "digest": digest.hex()}


@shared_task(bind=True, base=TolerantTask, name="fleet.tasks.always_fail")
def always_fail(self, reason: str = "this task always fails") -> dict:
    """A bad task, for the demo of a failure: always raises.

    Raises:
        RuntimeError: always, with ``reason`` and the host it ran on.
    """
    raise RuntimeError(f"{reason} (on {socket.gethostname()})")


@shared_task(bind=True, base=TolerantTask, name="fleet.tasks.add")
def add(self, x: float, y: float) -> float:
    """Canvas building block: ``x + y`` (chains pass the previous result as ``x``).

    Raises:
        TypeError: ``x`` or ``y`` is not a number.
    """
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (x, y)):
        raise TypeError("add takes two numbers")
    log.info("%s + %s", x, y)
    return x + y


@shared_task(bind=True, base=TolerantTask, name="fleet.tasks.total")
def total(self, values: list) -> float:
    """Canvas building block: the sum of ``values`` (a chord's body receives its header's results).

    Raises:
        TypeError: ``values`` is not a list of numbers.
    """
    if not isinstance(values, list) or not all(isinstance(v, (int, float)) for v in values):
        raise TypeError("total takes a list of numbers")
    return sum(values)


@shared_task(base=TolerantTask, name="fleet.tasks.record_failure")
def record_failure(request, exc, traceback) -> dict:
    """Error callback (``link_error``): record a failed task with its exception and traceback.

    Celery calls it with the failed task's request context, the exception and the traceback
    text (Celery picks that calling convention from the three-argument signature, which is why
    this task is not bound); it logs them at ERROR on the worker that runs it and returns them.

    Returns:
        ``{"failed_task_id", "failed_task", "error", "traceback"}``.
    """
    failed_id = getattr(request, "id", None)
    failed_name = getattr(request, "task", None)
    log.error("task %s[%s] failed: %r\n%s", failed_name, failed_id, exc, traceback)
    return {
        "failed_task_id": failed_id,
        "failed_task": failed_name,
        "error": f"{type(exc).__name__}: {exc}",
        "traceback": str(traceback),
    }
