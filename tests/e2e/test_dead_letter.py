"""A poison task (it kills the worker process running it) must not loop forever: after the
``delivery-limit`` policy's number of deliveries RabbitMQ dead-letters it, the workers survive,
and an operator can read it with ``python -m fleet.dead_letter``.
"""

from __future__ import annotations

import json
import time

import pytest

pytestmark = pytest.mark.e2e

SEND = (
    "-c 'from fleet.celery_app import make_celery; from fleet.settings import load_settings; "
    'print(make_celery(load_settings()).send_task("fleet.drill_tasks.crash_worker_process").id)\''
)


def _dead_letters(lab, worker: str, *args: str) -> list[dict]:
    out = lab.app_python(worker, " ".join(["-m", "fleet.dead_letter", *args]))
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _default_queue_workers(lab) -> list[str]:
    return [name for name, queues in lab.bindings().items() if "default" in queues]


def test_a_task_that_crashes_its_worker_is_dead_lettered_after_the_delivery_limit(lab):
    workers = _default_queue_workers(lab)
    reader = workers[0]
    _dead_letters(lab, reader, "--remove")  # start from an empty dead-letter queue

    task_id = lab.app_python(lab.groups["producers"][0], SEND).strip()

    deadline = time.monotonic() + 120
    entries: list[dict] = []
    while time.monotonic() < deadline and not entries:
        entries = [e for e in _dead_letters(lab, reader) if e["task_id"] == task_id]
        if not entries:
            time.sleep(1)
    assert entries, f"task {task_id} was not dead-lettered within 120 s"
    (entry,) = entries
    assert entry["task"] == "fleet.drill_tasks.crash_worker_process"
    assert (entry["queue"], entry["reason"]) == ("default", "delivery_limit")

    # Listing left it in place; --remove takes it out.
    assert [e["task_id"] for e in _dead_letters(lab, reader, "--remove")] == [task_id]
    assert _dead_letters(lab, reader) == []

    # Each crash killed one pool process; the workers replaced them and kept running.
    for name in workers:
        status = lab.host(name).check_output("supervisorctl status")
        assert all(line.split()[1] == "RUNNING" for line in status.splitlines() if line.strip()), status
