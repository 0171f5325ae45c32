"""Read the dead-letter queue: the tasks RabbitMQ gave up on after the delivery limit.

Run on a worker host as the app user (the worker's RabbitMQ user may read the queue)::

    sudo -u fleet /opt/fleet/venv/bin/python -m fleet.dead_letter            # list, keep
    sudo -u fleet /opt/fleet/venv/bin/python -m fleet.dead_letter --remove   # list, then delete

Prints one JSON object per dead-lettered task (see :func:`read_dead_letters`).
"""

from __future__ import annotations

import argparse
import json
import sys

from kombu import Connection

from fleet.celeryconfig import DEAD_LETTER_QUEUE, declare_dead_letter_queue
from fleet.settings import load_settings


def describe(headers: dict) -> dict:
    """Summarise one dead-lettered Celery message from its AMQP headers.

    Args:
        headers: The message's application headers: Celery's task protocol 2 (``id``, ``task``,
            ``argsrepr``, ``kwargsrepr``) plus what RabbitMQ adds when dead-lettering
            (``x-first-death-queue``, ``x-first-death-reason``, ``x-delivery-count``, ``x-death``).

    Returns:
        ``{"task_id": str | None, "task": str | None, "queue": str | None, "reason": str | None,
        "deliveries": int | None, "args": str | None, "kwargs": str | None}``; ``reason`` is
        RabbitMQ's (``delivery_limit`` for a task that crashed its workers too often).
    """
    deaths = headers.get("x-death") or [{}]
    return {
        "task_id": headers.get("id"),
        "task": headers.get("task"),
        "queue": headers.get("x-first-death-queue") or deaths[0].get("queue"),
        "reason": headers.get("x-first-death-reason") or deaths[0].get("reason"),
        "deliveries": headers.get("x-delivery-count"),
        "args": headers.get("argsrepr"),
        "kwargs": headers.get("kwargsrepr"),
    }


def read_dead_letters(connection: Connection, remove: bool = False, limit: int = 1000) -> list[dict]:
    """Fetch up to ``limit`` messages from the dead-letter queue.

    Every message is held unacknowledged until all are read, so none is returned twice; then
    each is acknowledged (deleted) when ``remove`` is true, or else rejected with requeue (given
    back to the queue).

    Args:
        connection: An open :class:`kombu.Connection` as a user allowed to read the queue.
        remove: Delete the messages read (``basic.ack``) instead of leaving them.
        limit: Most messages to read in one call.

    Returns:
        One :func:`describe` dict per message, oldest first.

    Raises:
        kombu.exceptions.OperationalError: the broker cannot be reached.
        amqp.exceptions.AccessRefused: the user may not read the queue.
    """
    declare_dead_letter_queue(connection)
    channel = connection.channel()
    try:
        messages = []
        while len(messages) < limit:
            message = DEAD_LETTER_QUEUE.bind(channel).get(no_ack=False)
            if message is None:
                break
            messages.append(message)
        for message in messages:
            if remove:
                message.ack()
            else:
                message.requeue()
        return [describe(message.headers or {}) for message in messages]
    finally:
        channel.close()


def main(argv: list[str] | None = None) -> int:
    """Command line: print the dead-lettered tasks as JSON lines; 0 on success."""
    parser = argparse.ArgumentParser(prog="python -m fleet.dead_letter", description=__doc__.splitlines()[0])
    parser.add_argument("--remove", action="store_true", help="delete the messages after printing them")
    parser.add_argument("--limit", type=int, default=1000, help="most messages to read (default 1000)")
    args = parser.parse_args(argv)
    settings = load_settings()
    with Connection(list(settings.broker_urls), heartbeat=settings.broker_heartbeat) as connection:
        connection.ensure_connection(max_retries=3)
        for entry in read_dead_letters(connection, remove=args.remove, limit=args.limit):
            print(json.dumps(entry, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
