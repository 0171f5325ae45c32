"""Routing demo: send tasks to every queue through the producer's HTTP API and show who ran them.

Run by ``playbooks/demo-routing.yml`` and by the end-to-end tests::

    python -m fleet.demo --api http://10.213.42.20:8000 \\
        --bindings '{"worker1": ["default", "email"], "worker2": ["default", "reports"]}'

It calls the API as the client whose token is in ``$FLEET_API_TOKEN``. It prints a table
*queue -> hosts that ran its tasks* and exits 1 when any task ran on a host
not bound to its queue, was delivered from another queue, or did not finish in time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

#: Queue -> (API task name, kwargs) used to exercise it. Cheap versions of each task.
QUEUE_PROBES: dict[str, tuple[str, dict]] = {
    "default": ("ping", {}),
    "email": ("send_email", {"to": "demo@example.invalid", "subject": "routing demo", "duration": 0.05}),
    "reports": ("render_report", {"rounds": 2000}),
}


class ApiError(RuntimeError):
    """The producer API answered with an unexpected status or could not be reached."""


#: Environment variable a client of the API reads its token from (never a command-line argument,
#: which ``ps`` and ``ansible-playbook -v`` would show).
TOKEN_ENV = "FLEET_API_TOKEN"


def auth_headers(token: str | None = None) -> dict[str, str]:
    """``{"Authorization": "Bearer <token>"}``, the token from ``$FLEET_API_TOKEN`` when None.

    Returns ``{}`` when there is no token (the API then answers 401 on protected routes).
    """
    token = os.environ.get(TOKEN_ENV, "") if token is None else token
    return {"Authorization": f"Bearer {token}"} if token else {}


def api_call(
    url: str,
    method: str = "GET",
    body: dict | None = None,
    timeout: float = 10.0,
    headers: dict | None = None,
    token: str | None = None,
) -> tuple[int, dict]:
    """Make one JSON request to the producer API.

    Args:
        url: Full URL.
        method: HTTP method.
        body: JSON body to send, or None.
        timeout: Socket timeout in seconds.
        headers: Extra request headers (for instance ``X-Request-ID``).
        token: The client's API token; ``$FLEET_API_TOKEN`` when None, none at all when ``""``.

    Returns:
        ``(status, decoded JSON body)``; 4xx/5xx answers are returned, not raised.

    Raises:
        ApiError: the server could not be reached or did not answer JSON.
    """
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **auth_headers(token), **(headers or {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except json.JSONDecodeError as jexc:
            raise ApiError(f"{method} {url}: HTTP {exc.code} without JSON body") from jexc
    except (urllib.error.URLError, OSError, json.JSONDecodeError) as exc:
        raise ApiError(f"{method} {url}: {exc}") from exc


@dataclass
class RoutingReport:
    """Outcome of one routing demo.

    Attributes:
        ran_on: queue -> Counter of hostname -> tasks that ran there.
        expected: queue -> sorted hostnames bound to it.
        violations: human-readable lines, one per task that ran in the wrong place.
        unfinished: ids of tasks with no result by the deadline.
        failed: ids of tasks that ended in FAILURE.
        sent: tasks accepted by the API.
        seconds: wall time of the demo, seconds.
    """

    ran_on: dict[str, Counter] = field(default_factory=dict)
    expected: dict[str, list[str]] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    sent: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when every task finished, succeeded, and ran where its queue is consumed."""
        return not (self.violations or self.unfinished or self.failed)

    def table(self) -> str:
        """Render *queue -> hosts that ran its tasks* as a fixed-width text table."""
        lines = [f"{'queue':<10} {'bound hosts':<24} ran on (tasks)", "-" * 64]
        for queue, counts in self.ran_on.items():
            ran = ", ".join(f"{h} ({n})" for h, n in sorted(counts.items())) or "-"
            lines.append(f"{queue:<10} {','.join(self.expected.get(queue, [])):<24} {ran}")
        lines.append(
            f"sent {self.sent}, finished {self.sent - len(self.unfinished)}, failed {len(self.failed)}, "
            f"misrouted {len(self.violations)}, in {self.seconds:.1f} s"
        )
        return "\n".join(lines)


def _wait_result(api: str, task_id: str, deadline: float) -> dict | None:
    delay = 0.1
    while time.monotonic() < deadline:
        status, body = api_call(f"{api}/tasks/{task_id}")
        if status == 200 and body.get("state") in ("SUCCESS", "FAILURE"):
            return body
        time.sleep(delay)
        delay = min(delay * 2, 1.0)
    return None


def run_routing_demo(
    api: str, bindings: dict[str, list[str]], per_queue: int = 50, timeout: float = 180.0
) -> RoutingReport:
    """Send ``per_queue`` tasks to each bound queue and check where each one ran.

    Args:
        api: Base URL of the producer API, e.g. ``http://10.213.42.20:8000``.
        bindings: hostname (as the host reports it) -> queues its workers consume.
        per_queue: Tasks to send to each queue.
        timeout: Seconds to wait for all results after the last publish.

    Returns:
        A :class:`RoutingReport`.

    Raises:
        ApiError: the API refused a task or could not be reached.
        ValueError: a bound queue has no probe task in :data:`QUEUE_PROBES`.
    """
    started = time.monotonic()
    queues = sorted({q for qs in bindings.values() for q in qs})
    report = RoutingReport()
    submitted: list[tuple[str, str]] = []
    for queue in queues:
        if queue not in QUEUE_PROBES:
            raise ValueError(f"no probe task for queue {queue!r}")
        report.expected[queue] = sorted(h for h, qs in bindings.items() if queue in qs)
        report.ran_on[queue] = Counter()
        name, kwargs = QUEUE_PROBES[queue]
        for _ in range(per_queue):
            status, body = api_call(f"{api}/tasks/{name}", "POST", {"kwargs": kwargs})
            if status != 202 or body.get("queue") != queue:
                raise ApiError(f"POST /tasks/{name}: HTTP {status} {body}")
            submitted.append((queue, body["task_id"]))
    report.sent = len(submitted)

    deadline = time.monotonic() + timeout
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda item: _wait_result(api, item[1], deadline), submitted))

    for (queue, task_id), body in zip(submitted, results, strict=True):
        if body is None:
            report.unfinished.append(task_id)
            continue
        if body["state"] != "SUCCESS":
            report.failed.append(task_id)
            continue
        result = body["result"]
        host = result.get("hostname")
        report.ran_on[queue][host] += 1
        if host not in report.expected[queue]:
            report.violations.append(f"{task_id}: queue {queue} ran on {host}, not bound to it")
        if result.get("queue") != queue:
            report.violations.append(f"{task_id}: sent to {queue}, delivered from {result.get('queue')}")
    report.seconds = time.monotonic() - started
    return report


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the process exit code (0 ok, 1 routing broken)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", required=True, help="producer base URL")
    parser.add_argument("--bindings", required=True, help="JSON object: hostname -> list of queues")
    parser.add_argument("--per-queue", type=int, default=50, help="tasks per queue (default 50)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for results")
    parser.add_argument("--json", help="also write the report as JSON to this file")
    args = parser.parse_args(argv)
    try:
        report = run_routing_demo(args.api.rstrip("/"), json.loads(args.bindings), args.per_queue, args.timeout)
    except (ApiError, ValueError) as exc:
        print(f"routing demo failed: {exc}", file=sys.stderr)
        return 1
    print(report.table())
    for line in (
        report.violations + [f"{t}: no result" for t in report.unfinished] + [f"{t}: FAILURE" for t in report.failed]
    ):
        print(line)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(
                {
                    "ok": report.ok,
                    "sent": report.sent,
                    "seconds": report.seconds,
                    "ran_on": {q: dict(c) for q, c in report.ran_on.items()},
                    "expected": report.expected,
                    "violations": report.violations,
                    "unfinished": report.unfinished,
                    "failed": report.failed,
                },
                fh,
                indent=2,
            )
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
