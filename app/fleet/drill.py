"""Failover drill runner: a bounded, steady stream of numbered tasks, and a count of every one.

Runs on a producer host with the producer's configuration (publisher confirms on), started by
the ``playbooks/drills/*.yml`` playbooks, which inject the fault meanwhile::

    python -m fleet.drill run --count 1000 --rate 50 --queue default \\
        --fault-after 200 --ready-file /run/fleet-drill/ready --report /var/tmp/drill.json
    python -m fleet.drill mark-fault --run-id RUN --at 1763750000.25
    python -m fleet.drill http --url http://10.213.42.20:8000/tasks/ping --count 600 --rate 5 \\
        [--read-back 120 --max-non-2xx 0]

It records every publish (confirmed, or the error), reads every execution back from Redis (each
``fleet.drill_tasks.drill_step`` appends one record), and reports: sent, confirmed, completed, lost
(confirmed but never executed), duplicated (executed more than once), and recovery figures. The
exit code is 1 when anything confirmed was lost.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fleet.drill_tasks import DRILL_EXECUTIONS_KEY
from fleet.errors import describe_error

FAULT_KEY = "fleet:drill:{run_id}:fault"
#: How long drill records stay in Redis for inspection, seconds.
RECORD_TTL = 86400


@dataclass
class Publish:
    """One publish attempt: sequence number, epoch seconds, whether the broker confirmed it."""

    seq: int
    t: float
    queue: str
    confirmed: bool
    error: str = ""


@dataclass
class DrillReport:
    """Counts and recovery figures of one drill run (times in seconds).

    ``lost`` lists confirmed sequence numbers that never ran; ``duplicated`` lists those that ran
    more than once (expected for in-flight tasks with acks_late). ``first_completion_after_fault``
    is the time from the fault to the first completion after it; ``gap_around_fault`` is the
    longest gap between consecutive completions from the fault on; ``longest_gap`` is the longest
    over the whole run. All three are None when they cannot be computed.
    """

    run_id: str
    sent: int
    confirmed: int
    publish_errors: int
    completed: int
    lost: list[int] = field(default_factory=list)
    duplicated: list[int] = field(default_factory=list)
    redelivered: int = 0
    fault_at: float | None = None
    first_completion_after_fault: float | None = None
    gap_around_fault: float | None = None
    longest_gap: float | None = None
    stream_seconds: float = 0.0
    by_host: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing confirmed was lost."""
        return not self.lost

    def summary(self) -> str:
        """A few human-readable lines for the playbook output."""

        def fmt(value):
            return "-" if value is None else f"{value:.2f} s"

        return "\n".join(
            [
                f"drill {self.run_id}: sent {self.sent}, confirmed {self.confirmed}, "
                f"publish errors {self.publish_errors}, completed {self.completed}, "
                f"LOST {len(self.lost)}, duplicated {len(self.duplicated)}, redelivered {self.redelivered}",
                f"recovery: first completion after fault {fmt(self.first_completion_after_fault)}, "
                f"longest gap from the fault on {fmt(self.gap_around_fault)}, "
                f"longest gap in the run {fmt(self.longest_gap)}",
                "executions by host: " + ", ".join(f"{h}={n}" for h, n in sorted(self.by_host.items())),
            ]
        )


def build_report(
    run_id: str, publishes: list[Publish], executions: list[dict], fault_at: float | None = None
) -> DrillReport:
    """Compute a :class:`DrillReport` from what was published and what ran.

    Args:
        run_id: The run's id.
        publishes: Every publish attempt, in order.
        executions: Records written by ``fleet.drill_tasks.drill_step`` (``seq``, ``host``, ``t``, ...).
        fault_at: Epoch seconds at which the fault was injected, if any.

    Returns:
        The report. Pure function: no I/O, so it is unit-tested with made-up times.
    """
    confirmed = {p.seq for p in publishes if p.confirmed}
    runs: dict[int, int] = {}
    by_host: dict[str, int] = {}
    for record in executions:
        runs[record["seq"]] = runs.get(record["seq"], 0) + 1
        by_host[record["host"]] = by_host.get(record["host"], 0) + 1
    times = sorted(record["t"] for record in executions)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    report = DrillReport(
        run_id=run_id,
        sent=len(publishes),
        confirmed=len(confirmed),
        publish_errors=sum(1 for p in publishes if not p.confirmed),
        completed=len(runs),
        lost=sorted(confirmed - set(runs)),
        duplicated=sorted(seq for seq, n in runs.items() if n > 1),
        redelivered=sum(1 for record in executions if record.get("redelivered")),
        fault_at=fault_at,
        longest_gap=max(gaps) if gaps else None,
        stream_seconds=(publishes[-1].t - publishes[0].t) if publishes else 0.0,
        by_host=by_host,
        errors=sorted({p.error for p in publishes if p.error})[:10],
    )
    if fault_at is not None:
        after = [t for t in times if t >= fault_at]
        before = [t for t in times if t < fault_at]
        if after:
            report.first_completion_after_fault = after[0] - fault_at
            window = ([before[-1]] if before else [fault_at]) + after
            report.gap_around_fault = (
                max(b - a for a, b in zip(window, window[1:], strict=False)) if len(window) > 1 else None
            )
    return report


def paced(count: int, rate: float, clock=time.monotonic, sleep=time.sleep) -> Iterator[int]:
    """Yield ``0 .. count-1``, the ``n``-th at ``n / rate`` seconds after the first.

    The schedule is fixed at the start: when the caller's work for one step overruns its slot
    (a slow confirm, a slow answer), the next step comes at once, so a stream catches up rather
    than stretching, and ``count`` steps take ``count / rate`` seconds unless the work itself
    takes longer.

    Args:
        count: Steps to yield.
        rate: Steps per second (above 0).
        clock: Monotonic clock in seconds (a test passes a fake one).
        sleep: Sleeps the given seconds (a test passes the fake clock's).

    Yields:
        The step's index.
    """
    started = clock()
    for seq in range(count):
        delay = started + seq / rate - clock()
        if delay > 0:
            sleep(delay)
        yield seq


def _cue(ready_file: str | None, fault_after: int | None, sent: int, text: str) -> None:
    """Write ``text`` to ``ready_file`` (its parent made if missing) when ``sent`` reaches
    ``fault_after``: the playbook's cue to inject the fault. Nothing without both."""
    if ready_file and fault_after is not None and sent == fault_after:
        Path(ready_file).parent.mkdir(parents=True, exist_ok=True)
        Path(ready_file).write_text(text)


def publish_stream(
    app,
    run_id: str,
    count: int,
    rate: float,
    queues: list[str],
    duration: float,
    fault_after: int | None = None,
    ready_file: str | None = None,
) -> list[Publish]:
    """Publish ``count`` drill tasks at ``rate`` tasks/s, round-robin over ``queues``.

    Paced by :func:`paced`: a publish that falls behind schedule (the broker was slow to confirm)
    is followed by the next one at once, so the stream catches up rather than stretching. With publisher confirms on
    (producer configuration), a publish returns only once a broker node has taken the message; a
    publish that still fails after Celery's retry policy is recorded with its error, not retried
    here.

    Args:
        app: The Celery app (producer side).
        run_id: Drill run id.
        count: Tasks to publish.
        rate: Target publish rate, tasks per second.
        queues: Queue names, used in turn.
        duration: Seconds each task waits before recording itself.
        fault_after: After this many publishes, create ``ready_file`` (the playbook's cue).
        ready_file: Path to create; its parent is created if missing.

    Returns:
        One :class:`Publish` per task, in order.
    """
    task = app.tasks["fleet.drill_tasks.drill_step"]
    publishes: list[Publish] = []
    for seq in paced(count, rate):
        queue = queues[seq % len(queues)]
        stamp = time.time()
        try:
            task.apply_async(args=(run_id, seq, duration), queue=queue)
            publishes.append(Publish(seq, stamp, queue, True))
        except Exception as exc:  # noqa: BLE001 - every publish failure is counted, whatever it is
            publishes.append(Publish(seq, stamp, queue, False, describe_error(exc)))
        _cue(ready_file, fault_after, seq + 1, f"{run_id}\n")
    return publishes


def http_stream(
    post,
    url: str,
    count: int,
    rate: float,
    fault_after: int | None = None,
    ready_file: str | None = None,
    wall_clock=time.time,
) -> dict:
    """POST to the producer API ``count`` times at ``rate`` requests/s and count the answers.

    Runs beside a drill that touches the producer (rolling-upgrade, web-host-down): each request
    publishes a real task (``POST /tasks/ping``), so an answer is what a client of the API would
    get. Paced by :func:`paced`, as :func:`publish_stream` is.

    Args:
        post: ``post(url) -> (status, body)``: sends one request and returns the HTTP status and
            the decoded JSON body (a dict); raises on a connection error or timeout (counted as
            an error, not a status).
        url: The API endpoint, e.g. ``https://10.213.42.25:8000/tasks/ping``.
        count: Requests to send.
        rate: Target request rate, requests per second.
        fault_after: With ``ready_file``, write that file once this many requests were sent,
            the cue for the playbook to inject the fault.
        ready_file: Path of that cue file.
        wall_clock: Unix time in seconds (a test passes a fake).

    Returns:
        ``{"sent": int, "by_status": {status: count}, "errors": int, "non_2xx": int,
        "error_samples": [str], "non_2xx_requests": [{"seq": int, "sent_at": float,
        "seconds": float, "answer": str}], "seconds": float, "slowest_seconds": float,
        "longest_seconds_without_2xx": float, "accepted": [task id]}``;
        ``non_2xx`` counts errors too; ``non_2xx_requests`` names the first 20 of them: the
        request's number (from 0), when it was sent (``wall_clock()``, Unix seconds, to line up
        with a drill's timeline), how long it took (seconds) and its status or error;
        ``slowest_seconds`` is the longest request (answered or not);
        ``longest_seconds_without_2xx`` the longest time between two 2xx answers (or from the start
        to the first, or from the last to the end): what a client saw of an outage;
        ``accepted`` holds the ``task_id`` of every 2xx answer, in order.
    """
    by_status: dict[str, int] = {}
    errors: list[str] = []
    accepted: list[str] = []
    failed: list[dict] = []
    slowest = 0.0
    started = time.monotonic()
    last_2xx, longest_gap = started, 0.0
    for seq in paced(count, rate):
        sent_at, sent_at_wall = time.monotonic(), wall_clock()
        try:
            status, body = post(url)
        except Exception as exc:  # noqa: BLE001 - every failed request is counted, whatever it is
            errors.append(describe_error(exc))
            status, body = None, None
        took = time.monotonic() - sent_at
        slowest = max(slowest, took)
        if (status is None or not 200 <= status < 300) and len(failed) < 20:
            answer = errors[-1] if status is None else f"HTTP {status}"
            failed.append({"seq": seq, "sent_at": round(sent_at_wall, 3), "seconds": round(took, 2), "answer": answer})
        if status is not None:
            by_status[str(status)] = by_status.get(str(status), 0) + 1
            if 200 <= status < 300:
                now = time.monotonic()
                longest_gap, last_2xx = max(longest_gap, now - last_2xx), now
                if isinstance(body, dict) and body.get("task_id"):
                    accepted.append(body["task_id"])
        _cue(ready_file, fault_after, seq + 1, f"{seq + 1}\n")
    non_2xx = len(errors) + sum(n for status, n in by_status.items() if not status.startswith("2"))
    return {
        "sent": count,
        "by_status": by_status,
        "errors": len(errors),
        "non_2xx": non_2xx,
        "error_samples": sorted(set(errors))[:10],
        "non_2xx_requests": failed,
        "seconds": round(time.monotonic() - started, 2),
        "slowest_seconds": round(slowest, 2),
        "longest_seconds_without_2xx": round(max(longest_gap, time.monotonic() - last_2xx), 2),
        "accepted": accepted,
    }


def read_back(
    get, status_url: str, task_ids: list[str], timeout: float, clock=time.monotonic, sleep=time.sleep
) -> dict:
    """Ask the API for each accepted task's state until every one succeeded or ``timeout`` passes.

    A task the API accepted (2xx) was confirmed by the broker: it must run, and its result must be
    readable (``GET /tasks/<id>`` answers ``state: SUCCESS``). One that never does is lost.

    Args:
        get: ``get(url) -> (status, body)``, as ``post`` of :func:`http_stream`; a raised error
            or a non-200 answer leaves the task to the next round.
        status_url: ``GET`` URL with ``{task_id}``, e.g. ``https://10.213.42.25:8000/tasks/{task_id}``.
        task_ids: The accepted tasks' ids.
        timeout: Seconds for the whole read-back.
        clock: Monotonic clock, seconds (a test passes a fake).
        sleep: Sleep function, seconds (a test passes a fake).

    Returns:
        ``{"read_back": int, "succeeded": int, "lost": [task id], "states": {state: count},
        "read_seconds": float}``; ``states`` are the last answers of the lost ones.
    """
    started = clock()
    pending = list(dict.fromkeys(task_ids))
    states: dict[str, str] = {}
    while True:
        still = []
        for task_id in pending:
            try:
                status, body = get(status_url.format(task_id=task_id))
            except Exception as exc:  # noqa: BLE001 - an unreadable answer is asked again
                states[task_id] = describe_error(exc)
                still.append(task_id)
                continue
            state = body.get("state") if status == 200 and isinstance(body, dict) else f"HTTP {status}"
            if state != "SUCCESS":
                states[task_id] = str(state)
                still.append(task_id)
        pending = still
        if not pending or clock() - started >= timeout:
            break
        sleep(1.0)
    counts: dict[str, int] = {}
    for task_id in pending:
        counts[states[task_id]] = counts.get(states[task_id], 0) + 1
    return {
        "read_back": len(task_ids),
        "succeeded": len(task_ids) - len(pending),
        "lost": pending,
        "states": counts,
        "read_seconds": round(clock() - started, 2),
    }


def read_executions(client, run_id: str) -> list[dict]:
    """Read every execution record of ``run_id`` from Redis (``client``: a redis-py client)."""
    return [json.loads(raw) for raw in client.lrange(DRILL_EXECUTIONS_KEY.format(run_id=run_id), 0, -1)]


def wait_for_executions(client, run_id: str, expected: set[int], timeout: float) -> list[dict]:
    """Poll Redis until every sequence number in ``expected`` has run, or ``timeout`` seconds pass.

    Returns:
        The execution records read last.
    """
    deadline = time.monotonic() + timeout
    while True:
        executions = read_executions(client, run_id)
        if expected <= {e["seq"] for e in executions} or time.monotonic() >= deadline:
            return executions
        time.sleep(0.5)


@dataclass
class Sent:
    """One task or chord the result stream sent: its number, id (None when the publish failed)
    and the value its result must hold."""

    seq: int
    task_id: str | None
    expected: float
    error: str = ""


@dataclass
class ResultReport:
    """What the result stream of the backend-kill drill found (times in seconds).

    ``lost`` lists confirmed tasks whose result is missing, not SUCCESS, or not the value the
    task returns (``add(seq, 1000)``); ``chords_lost`` the same for chords (a header of
    ``chord_size`` ``add`` tasks, ``total`` as the callback). ``seconds_to_all_results`` is how
    long the read-back took after the stream ended.
    """

    run_id: str
    sent: int
    confirmed: int
    publish_errors: int
    results_ok: int
    lost: list[int] = field(default_factory=list)
    chords_sent: int = 0
    chords_confirmed: int = 0
    chords_ok: int = 0
    chords_lost: list[int] = field(default_factory=list)
    fault_at: float | None = None
    stream_seconds: float = 0.0
    seconds_to_all_results: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every confirmed task and chord has its result."""
        return not self.lost and not self.chords_lost

    def summary(self) -> str:
        """One human-readable line for the playbook output."""
        return (
            f"drill {self.run_id}: tasks sent {self.sent}, confirmed {self.confirmed}, publish errors "
            f"{self.publish_errors}, results ok {self.results_ok}, LOST {len(self.lost)}; chords sent "
            f"{self.chords_sent}, confirmed {self.chords_confirmed}, ok {self.chords_ok}, "
            f"LOST {len(self.chords_lost)}; read back in {self.seconds_to_all_results:.2f} s"
        )


def result_stream(
    app,
    count: int,
    rate: float,
    chords: int,
    chord_size: int,
    fault_after: int | None = None,
    ready_file: str | None = None,
) -> tuple[list[Sent], list[Sent]]:
    """Send ``count`` ``fleet.tasks.add(seq, 1000)`` tasks at ``rate`` tasks/s, and ``chords``
    chords spread evenly among them, keeping every id to read its result back.

    A chord is ``chord([add(seq, j) for j in range(chord_size)], total())``; its result is
    ``chord_size * seq + chord_size * (chord_size - 1) / 2``. A publish that fails (after the
    producer's retry policy; a chord's publish also writes its size to the result backend) is
    recorded with its error and not retried here.

    Args:
        app: The Celery app (producer side, publisher confirms on).
        count: Tasks to send.
        rate: Tasks per second (paced by :func:`paced`).
        chords: Chords to send among them, 0 or more.
        chord_size: Tasks in each chord's header, 1 or more.
        fault_after: After this many tasks, create ``ready_file`` (the playbook's cue).
        ready_file: Path to create; its parent is created if missing.

    Returns:
        ``(tasks, chords)``: one :class:`Sent` per task and per chord, in order.
    """
    from celery import chord

    add, total = app.tasks["fleet.tasks.add"], app.tasks["fleet.tasks.total"]
    every = max(1, count // chords) if chords else 0
    tasks: list[Sent] = []
    sent_chords: list[Sent] = []
    for seq in paced(count, rate):
        try:
            tasks.append(Sent(seq, add.apply_async(args=(seq, 1000)).id, seq + 1000))
        except Exception as exc:  # noqa: BLE001 - every publish failure is counted, whatever it is
            tasks.append(Sent(seq, None, seq + 1000, describe_error(exc)))
        if every and seq % every == 0 and len(sent_chords) < chords:
            n = len(sent_chords)
            expected = chord_size * n + chord_size * (chord_size - 1) / 2
            try:
                result = chord([add.s(n, j) for j in range(chord_size)])(total.s())
                sent_chords.append(Sent(n, result.id, expected))
            except Exception as exc:  # noqa: BLE001 - as above
                sent_chords.append(Sent(n, None, expected, describe_error(exc)))
        _cue(ready_file, fault_after, seq + 1, "ready\n")
    return tasks, sent_chords


def read_results(app, sent: list[Sent], timeout: float, clock=time.monotonic) -> dict[int, bool]:
    """Wait for the result of every :class:`Sent` that has an id, up to ``timeout`` seconds in all.

    Returns:
        ``{seq: ok}``: ok is True when the result is SUCCESS with the expected value; a result
        still missing when the time is up, a failure, or another value is False.
    """
    from celery.exceptions import TimeoutError as ResultTimeout

    deadline = clock() + timeout
    outcome: dict[int, bool] = {}
    for item in sent:
        if item.task_id is None:
            continue
        result = app.AsyncResult(item.task_id)
        try:
            value = result.get(timeout=max(0.5, deadline - clock()), propagate=False)
            outcome[item.seq] = result.state == "SUCCESS" and value == item.expected
        except (ResultTimeout, OSError) as exc:
            outcome[item.seq] = False
            item.error = describe_error(exc)
    return outcome


def build_result_report(
    run_id: str,
    tasks: list[Sent],
    chords: list[Sent],
    task_outcome: dict[int, bool],
    chord_outcome: dict[int, bool],
    fault_at: float | None = None,
) -> ResultReport:
    """Count what :func:`result_stream` sent and :func:`read_results` found (pure: unit-tested)."""
    confirmed = [t for t in tasks if t.task_id]
    confirmed_chords = [c for c in chords if c.task_id]
    return ResultReport(
        run_id=run_id,
        sent=len(tasks),
        confirmed=len(confirmed),
        publish_errors=len(tasks) - len(confirmed),
        results_ok=sum(1 for t in confirmed if task_outcome.get(t.seq)),
        lost=sorted(t.seq for t in confirmed if not task_outcome.get(t.seq)),
        chords_sent=len(chords),
        chords_confirmed=len(confirmed_chords),
        chords_ok=sum(1 for c in confirmed_chords if chord_outcome.get(c.seq)),
        chords_lost=sorted(c.seq for c in confirmed_chords if not chord_outcome.get(c.seq)),
        fault_at=fault_at,
        errors=sorted({x.error for x in tasks + chords if x.error})[:10],
    )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (``run``, ``results``, ``mark-fault`` or ``http``); returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="publish a stream, wait for it to drain, report")
    run.add_argument("--run-id", default=None, help="default: a new UUID")
    run.add_argument("--count", type=int, default=1000, help="tasks to publish (default 1000)")
    run.add_argument("--rate", type=float, default=50.0, help="tasks per second (default 50)")
    run.add_argument("--queue", action="append", help="queue(s), used in turn (default: default)")
    run.add_argument("--duration", type=float, default=0.0, help="seconds each task waits (default 0)")
    run.add_argument("--fault-after", type=int, default=None, help="create --ready-file after this many publishes")
    run.add_argument("--ready-file", default=None)
    run.add_argument("--drain-timeout", type=float, default=180.0, help="seconds to wait for stragglers")
    run.add_argument("--report", default=None, help="write the JSON report here")
    res = sub.add_parser("results", help="send tasks and chords, read every result back, report")
    res.add_argument("--run-id", default=None, help="default: a new UUID")
    res.add_argument("--count", type=int, default=600, help="tasks to send (default 600)")
    res.add_argument("--rate", type=float, default=30.0, help="tasks per second (default 30)")
    res.add_argument("--chords", type=int, default=20, help="chords among them (default 20)")
    res.add_argument("--chord-size", type=int, default=5, help="tasks in a chord's header (default 5)")
    res.add_argument("--fault-after", type=int, default=None, help="create --ready-file after this many tasks")
    res.add_argument("--ready-file", default=None)
    res.add_argument("--fault-file", default=None, help="epoch seconds of the fault, written by the playbook")
    res.add_argument("--read-timeout", type=float, default=120.0, help="seconds to read every result back")
    res.add_argument("--report", default=None, help="write the JSON report here")
    mark = sub.add_parser("mark-fault", help="record when the fault was injected")
    mark.add_argument("--run-id", required=True)
    mark.add_argument("--at", type=float, required=True, help="epoch seconds of the fault")
    http = sub.add_parser("http", help="POST to the producer API at a steady rate, count the answers")
    http.add_argument("--url", required=True, help="e.g. http://10.213.42.20:8000/tasks/ping")
    http.add_argument("--count", type=int, default=600, help="requests to send (default 600)")
    http.add_argument("--rate", type=float, default=5.0, help="requests per second (default 5)")
    http.add_argument("--report", default=None, help="write the JSON report here")
    http.add_argument("--fault-after", type=int, default=None, help="write --ready-file after this many requests")
    http.add_argument("--ready-file", default=None)
    http.add_argument(
        "--read-back",
        type=float,
        default=None,
        metavar="SECONDS",
        help="then ask GET /tasks/<id> for every accepted task, up to SECONDS; any not SUCCESS is lost",
    )
    http.add_argument(
        "--max-non-2xx", type=int, default=0, help="exit 1 when more answers than this are not 2xx (default 0)"
    )
    http.add_argument("--timeout", type=float, default=20.0, help="seconds per request (default 20)")
    args = parser.parse_args(argv)

    if args.command == "http":
        if args.count < 1 or args.rate <= 0:
            parser.error("--count must be 1 or more and --rate above 0")

        from fleet.demo import api_call

        def call(url: str, body: dict | None = None) -> tuple[int, dict]:
            """POST ``body`` (GET when None) with ``$FLEET_API_TOKEN``; raises fleet.demo.ApiError."""
            return api_call(url, "GET" if body is None else "POST", body, timeout=args.timeout)

        answers = http_stream(
            lambda url: call(url, {}), args.url, args.count, args.rate, args.fault_after, args.ready_file
        )
        accepted = answers.pop("accepted")
        answers["accepted"] = len(accepted)
        if args.read_back is not None:
            status_url = args.url.rsplit("/tasks/", 1)[0] + "/tasks/{task_id}"
            answers.update(read_back(call, status_url, accepted, args.read_back))
        ok = answers["non_2xx"] <= args.max_non_2xx and not answers.get("lost")
        print(json.dumps({**answers, "lost": len(answers.get("lost", [])), "ok": ok}))
        if args.report:
            Path(args.report).parent.mkdir(parents=True, exist_ok=True)
            Path(args.report).write_text(json.dumps({**answers, "ok": ok}, indent=2))
        return 0 if ok else 1

    from fleet.celery_app import make_celery
    from fleet.settings import load_settings

    app = make_celery(load_settings())
    app.loader.import_default_modules()

    if args.command == "results":
        if args.count < 1 or args.rate <= 0 or args.chords < 0 or args.chord_size < 1:
            parser.error("--count and --chord-size must be 1 or more, --chords 0 or more, --rate above 0")
        run_id = args.run_id or uuid.uuid4().hex
        started = time.time()
        tasks, chords = result_stream(
            app, args.count, args.rate, args.chords, args.chord_size, args.fault_after, args.ready_file
        )
        streamed = time.time()
        task_outcome = read_results(app, tasks, args.read_timeout)
        chord_outcome = read_results(app, chords, args.read_timeout)
        fault_path = Path(args.fault_file) if args.fault_file else None
        fault_at = float(fault_path.read_text()) if fault_path and fault_path.is_file() else None
        report = build_result_report(run_id, tasks, chords, task_outcome, chord_outcome, fault_at)
        report.stream_seconds = round(streamed - started, 2)
        report.seconds_to_all_results = round(time.time() - streamed, 2)
        print(report.summary())
        if args.report:
            Path(args.report).parent.mkdir(parents=True, exist_ok=True)
            Path(args.report).write_text(json.dumps({**asdict(report), "ok": report.ok}, indent=2))
        return 0 if report.ok else 1

    client = app.backend.client

    if args.command == "mark-fault":
        client.set(FAULT_KEY.format(run_id=args.run_id), args.at, ex=RECORD_TTL)
        return 0

    if args.count < 1 or args.rate <= 0:
        parser.error("--count must be 1 or more and --rate above 0")
    run_id = args.run_id or uuid.uuid4().hex
    publishes = publish_stream(
        app, run_id, args.count, args.rate, args.queue or ["default"], args.duration, args.fault_after, args.ready_file
    )
    confirmed = {p.seq for p in publishes if p.confirmed}
    executions = wait_for_executions(client, run_id, confirmed, args.drain_timeout)
    client.expire(DRILL_EXECUTIONS_KEY.format(run_id=run_id), RECORD_TTL)
    fault = client.get(FAULT_KEY.format(run_id=run_id))
    report = build_report(run_id, publishes, executions, float(fault) if fault else None)
    print(report.summary())
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(json.dumps({**asdict(report), "ok": report.ok}, indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
