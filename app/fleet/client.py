"""A minimal client: sends a task by name and waits for its result, importing no task code.

Shows Celery's ``send_task``: the client knows a task only by its registered name (for instance
``fleet.tasks.send_email``), the queues and routes from :mod:`fleet.celeryconfig` and the
connection settings; the worker that runs the task has the code. Run on a host with the app's
configuration (the producer host)::

    /opt/fleet/venv/bin/python -m fleet.client fleet.tasks.send_email \\
        --args '["ops@example.invalid"]' --kwargs '{"subject": "hi"}' --wait 30

Prints ``{"task_id", "queue", "state", "result" | "error"}`` as JSON; exits 0 on SUCCESS, 1 when
the task failed, 2 when no result came within ``--wait`` seconds (the task may still run), 3 when
no broker took the task (``{"state": "NOT SENT", "error"}``, after the publish retry policy).
"""

from __future__ import annotations

import argparse
import json
import sys

from celery import Celery
from celery.exceptions import TimeoutError as CeleryTimeoutError
from kombu.exceptions import OperationalError

from fleet.celeryconfig import TASK_ROUTES, celery_config
from fleet.errors import describe_error
from fleet.settings import Settings, load_settings


def make_client(settings: Settings) -> Celery:
    """A Celery app with the shared configuration and no task modules (``imports`` empty).

    Args:
        settings: Connection settings (broker URLs, result backend).

    Returns:
        A :class:`celery.Celery` that can only ``send_task`` by name and read results.
    """
    app = Celery("fleet-client")
    app.conf.update(celery_config(settings))
    app.conf.imports = ()
    return app


def send(app: Celery, name: str, args: list, kwargs: dict, wait: float) -> tuple[int, dict]:
    """Send task ``name`` and wait up to ``wait`` seconds for its result.

    Args:
        app: A client from :func:`make_client`.
        name: Registered task name; routed by :data:`fleet.celeryconfig.TASK_ROUTES` (``default``
            when it is not listed).
        args: Positional arguments (JSON-serialisable).
        kwargs: Keyword arguments (JSON-serialisable).
        wait: Seconds to wait for the result; 0 sends and returns at once.

    Returns:
        ``(exit_code, report)``: 0 with ``"result"`` on success, 1 with ``"error"`` when the task
        raised, 2 when no result came in time (``"state"`` is the last one seen).

    Raises:
        kombu.exceptions.OperationalError: no broker accepted the message.
    """
    queue = TASK_ROUTES.get(name, {}).get("queue", "default")
    result = app.send_task(name, args=args, kwargs=kwargs)
    report = {"task_id": result.id, "queue": queue}
    if wait <= 0:
        return 0, {**report, "state": "SENT"}
    try:
        value = result.get(timeout=wait, propagate=False)
    except CeleryTimeoutError:
        return 2, {**report, "state": result.state}
    if result.successful():
        return 0, {**report, "state": result.state, "result": value}
    return 1, {**report, "state": result.state, "error": f"{type(value).__name__}: {value}"}


def main(argv: list[str] | None = None) -> int:
    """Command line (see the module docstring); returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m fleet.client", description=__doc__.splitlines()[0])
    parser.add_argument("name", help="registered task name, e.g. fleet.tasks.ping")
    parser.add_argument("--args", default="[]", help="JSON array of positional arguments")
    parser.add_argument("--kwargs", default="{}", help="JSON object of keyword arguments")
    parser.add_argument("--wait", type=float, default=30.0, help="seconds to wait for the result (0: do not wait)")
    opts = parser.parse_args(argv)
    try:
        args, kwargs = json.loads(opts.args), json.loads(opts.kwargs)
    except json.JSONDecodeError as exc:
        parser.error(f"--args/--kwargs must be JSON: {exc}")
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        parser.error("--args must be a JSON array and --kwargs a JSON object")
    try:
        code, report = send(make_client(load_settings()), opts.name, args, kwargs, opts.wait)
    except OperationalError as exc:
        code, report = 3, {"state": "NOT SENT", "error": describe_error(exc)}
    print(json.dumps(report, sort_keys=True))
    return code


if __name__ == "__main__":
    sys.exit(main())
