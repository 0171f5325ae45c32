"""Tasks for failover drills and their tests, loaded only where drills are enabled.

A worker imports this module only when its configuration says ``drills = true`` (the fleet_app
role's ``fleet_app_drills``, on in the lab and the Vagrant machines, off by default): production
workers then do not even know the poison task, and a drill task sent to them is rejected as
unregistered. The drill runner on the producer host (:mod:`fleet.drill`) imports it itself.
"""

from __future__ import annotations

import json
import os
import signal
import time

from celery import shared_task

from fleet.tasks import where


@shared_task(bind=True, name="fleet.drill_tasks.crash_worker_process")
def crash_worker_process(self) -> None:
    """A poison task: kills the worker process that runs it, as a crashing C extension or the
    kernel's OOM killer would (SIGKILL, so no Python cleanup runs).

    With ``task_acks_late`` and ``task_reject_on_worker_lost`` the message goes back to its queue
    and is delivered again, to any worker; RabbitMQ's ``delivery-limit`` policy ends the loop by
    dead-lettering it to the ``dead-letter`` queue. Not exposed over HTTP: the e2e tests and
    operators send it by name (``send_task``) to see that limit work.

    Raises:
        Nothing: the process dies before it can return.
    """
    os.kill(os.getpid(), signal.SIGKILL)


#: Redis list the drill task appends one record to per execution (see fleet.drill).
DRILL_EXECUTIONS_KEY = "fleet:drill:{run_id}:executions"


@shared_task(bind=True, name="fleet.drill_tasks.drill_step", ignore_result=True)
def drill_step(self, run_id: str, seq: int, duration: float = 0.0) -> dict:
    """One task of a failover drill: wait ``duration`` seconds, then record this execution.

    Every execution appends ``{"seq", "host", "pid", "worker", "redelivered", "t"}`` (``t`` in
    epoch seconds) to the Redis list ``fleet:drill:<run_id>:executions`` of the result backend,
    so a task that runs twice is counted twice and one that never runs is missing.

    Args:
        run_id: Drill run this task belongs to.
        seq: Sequence number within the run, from 0.
        duration: Seconds to wait before recording, 0 to 60 (a "long task" for worker drills).

    Raises:
        ValueError: ``duration`` outside 0..60.
    """
    if not 0 <= duration <= 60:
        raise ValueError("duration must be between 0 and 60 seconds")
    time.sleep(duration)
    info = where(self)
    record = {
        "seq": seq,
        "host": info["hostname"],
        "pid": info["pid"],
        "worker": info["worker"],
        "queue": info["queue"],
        "redelivered": info["redelivered"],
        "t": time.time(),
    }
    self.app.backend.client.rpush(DRILL_EXECUTIONS_KEY.format(run_id=run_id), json.dumps(record))
    return record
