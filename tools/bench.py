"""Measure the stack's throughput in one run, against the broker's own speed (make bench).

Usage: python tools/bench.py [--client web1] [--count 500] [--duration 8] [--concurrency 4 16 64]
                             [--ssh-config .lab/ssh_config] [--inventory inventory/lab]
                             [--secrets-dir inventory/lab/.secrets] [--scheme https]

On a deployed stack, in one run:

1. On the client host (a producer, over SSH, with the app's venv and its local HAProxy, as the
   producer publishes): raw kombu publish with publisher confirms of ``--count`` persistent
   messages to a scratch quorum queue, one confirm per message as Celery waits for it; raw consume
   of them with manual acks at prefetch 1 and at the default binding's prefetch (concurrency x
   worker_prefetch_multiplier); Celery ``send_task`` of ``--count`` ``fleet.tasks.ping`` (the
   producer's configuration: confirms, a result subscription per task); Celery end to end for the
   same tasks (first publish to last result read from Redis, the workers running them).
   The scratch queue and the RabbitMQ user that owns it (``fleet-bench``, permissions on
   ``fleet.bench.*`` only) are made for the run on the first broker and removed after it.
   The raw series and the Celery series run as two probes; where the hosts are lab containers
   on this machine, each host's CPU time over each probe (cgroup ``cpuacct.usage``) is printed
   as milliseconds per message (raw: each of 2 x ``--count`` published and consumed) or per task
   (Celery), with the share of the machine's cores busy meanwhile: on the lab, every host shares
   the same cores, so CPU per task bounds the rate (2 cores / 10 ms per task = 200 tasks/s).
2. From the controller: the HTTP API (``POST /tasks/ping``) with ``hey`` (Debian package) for
   ``--duration`` seconds at each ``--concurrency``: requests/s, p50 and p99 latency, non-2xx.

Prints one table with the ratios to raw publish, writes ``results/bench.json`` and
``results/bench.png`` (matplotlib: throughput per series, API requests/s and latency per
concurrency). Figures go into docs/benchmarks.md; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from lab_inventory import inventory_list

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
BENCH_USER = "fleet-bench"
#: The lab's container names: this prefix + the inventory host (roles/lab: lab_container_prefix).
LAB_PREFIX = "celery-fleet-"

#: Runs on the client host with the app's Python. argv: bench AMQP URL, message count, prefetch
#: of the workers' binding. Prints one JSON object: series name -> messages (or tasks) per second.
PROBE = r"""
import json, sys, time, uuid
from kombu import Connection, Exchange, Producer, Queue
from fleet.celery_app import make_celery
from fleet.settings import load_settings

url, count, worker_prefetch, part = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
queue = Queue("fleet.bench." + uuid.uuid4().hex[:8], Exchange(""), durable=True,
              queue_arguments={"x-queue-type": "quorum"})
queue.routing_key = queue.name
body = {"task": "noop", "args": [], "pad": "x" * 200}
rates = {}

def publish(conn, n):
    producer = Producer(conn.default_channel)
    start = time.perf_counter()
    for _ in range(n):
        producer.publish(body, routing_key=queue.name, delivery_mode=2, serializer="json")
    return n / (time.perf_counter() - start)

def consume(conn, n, prefetch):
    got = []
    def on_message(_body, message):
        message.ack()
        got.append(1)
    with conn.Consumer(queue, callbacks=[on_message], prefetch_count=prefetch):
        start = time.perf_counter()
        while len(got) < n:
            conn.drain_events(timeout=30)
    return n / (time.perf_counter() - start)

if part == "raw":
    with Connection(url, transport_options={"confirm_publish": True}, connect_timeout=10) as conn:
        bound = queue(conn.default_channel)
        bound.declare()
        try:
            rates["raw kombu publish (confirms)"] = publish(conn, count)
            rates["raw kombu consume (prefetch 1)"] = consume(conn, count, 1)
            publish(conn, count)
            rates[f"raw kombu consume (prefetch {worker_prefetch})"] = consume(conn, count, worker_prefetch)
        finally:
            bound.delete()
else:
    app = make_celery(load_settings())
    app.send_task("fleet.tasks.ping").get(timeout=60)  # connections and subscriptions warm
    start = time.perf_counter()
    results = [app.send_task("fleet.tasks.ping") for _ in range(count)]
    sent = time.perf_counter()
    app.ResultSet(results).get(timeout=300)
    done = time.perf_counter()
    rates["Celery send_task"] = count / (sent - start)
    rates["Celery end to end (noop)"] = count / (done - start)
print(json.dumps(rates))
"""

#: hey's figures: Requests/sec, the latency distribution's lines, the status code counts.
_HEY_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_HEY_PCT = re.compile(r"^\s+(\d+)% in ([\d.]+) secs", re.M)
_HEY_STATUS = re.compile(r"\[(\d{3})\]\s+(\d+) responses")


#: Logical CPUs of this machine: the lab's containers share them.
NCPU = os.cpu_count() or 1
_CPUACCT = Path("/sys/fs/cgroup/cpuacct")


def lab_cpu(hosts: list[str]) -> dict[str, float] | None:
    """CPU seconds used so far by each lab container (cgroup v1 ``cpuacct.usage``) and by the
    whole machine (``/proc/stat``, every state but idle and iowait), read with a wall clock.

    Returns:
        ``{host: CPU seconds, ..., "machine": CPU seconds, "wall": monotonic seconds}``, or None
        when the hosts are not lab containers on this machine (podman missing, a container not
        found, no cgroup v1 cpuacct): then make bench prints no CPU figures.
    """
    if shutil.which("podman") is None or not _CPUACCT.is_dir():
        return None
    names = [f"{LAB_PREFIX}{host}" for host in hosts]
    proc = subprocess.run(
        ["podman", "inspect", "--format", "{{.State.CgroupPath}}", *names], capture_output=True, text=True
    )
    paths = proc.stdout.split()
    if proc.returncode != 0 or len(paths) != len(hosts):
        return None
    usage = {}
    for host, path in zip(hosts, paths, strict=True):
        counter = _CPUACCT / path.lstrip("/") / "cpuacct.usage"
        if not counter.is_file():
            return None
        usage[host] = int(counter.read_text()) / 1e9
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    usage["machine"] = (sum(fields) - fields[3] - fields[4]) / ticks
    usage["wall"] = time.monotonic()
    return usage


def cpu_per_item(before: dict[str, float], after: dict[str, float], items: int) -> dict[str, float]:
    """CPU milliseconds per message or task of each host and the machine between two
    :func:`lab_cpu` readings, and ``machine_busy``: the fraction of all NCPU cores busy then."""
    cost = {host: (after[host] - before[host]) * 1000 / items for host in before if host != "wall"}
    cost["machine_busy"] = (after["machine"] - before["machine"]) / ((after["wall"] - before["wall"]) * NCPU)
    return cost


def ssh(ssh_config: str, host: str, argv: list[str], stdin: str | None = None) -> str:
    """Run ``argv`` on ``host`` over SSH with ``ssh_config`` (quoted for the remote shell).

    Raises:
        subprocess.CalledProcessError: SSH or the command failed.
    """
    return subprocess.run(
        ["ssh", "-F", ssh_config, host, shlex.join(argv)], input=stdin, capture_output=True, text=True, check=True
    ).stdout


def parse_hey(text: str) -> dict:
    """hey's summary as ``{"rps": requests/s, "p50_ms", "p99_ms": ms, "non_2xx": count}``.

    Raises:
        ValueError: the text is not hey's summary (hey failed).
    """
    rps = _HEY_RPS.search(text)
    if not rps:
        raise ValueError(f"no Requests/sec in hey's output: {text[-500:]}")
    pct = {int(p): float(s) * 1000 for p, s in _HEY_PCT.findall(text)}
    statuses = {int(c): int(n) for c, n in _HEY_STATUS.findall(text)}
    return {
        "rps": float(rps.group(1)),
        "p50_ms": pct.get(50),
        "p99_ms": pct.get(99),
        "responses": sum(statuses.values()),
        "non_2xx": sum(n for c, n in statuses.items() if not 200 <= c < 300),
    }


def http_load(url: str, token: str, concurrency: int, duration: float) -> dict:
    """``hey`` against ``url`` for ``duration`` seconds at ``concurrency``; :func:`parse_hey`'s dict.

    hey does not verify the server's certificate (it has no CA option); the lab's addresses are
    the test's own.
    """
    out = subprocess.run(
        ["hey", "-z", f"{duration}s", "-c", str(concurrency), "-m", "POST", "-T", "application/json",
         "-d", "{}", "-H", f"Authorization: Bearer {token}", url],
        capture_output=True, text=True, check=True, timeout=duration + 60,
    ).stdout  # fmt: skip
    return parse_hey(out)


def plot(report: dict, path: Path) -> None:
    """Bars of each throughput series and the API's requests/s and p50/p99 per concurrency, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    names = list(report["throughput"])
    left.barh(names, [report["throughput"][n] for n in names], color="tab:blue")
    left.set_xlabel("messages or tasks per second")
    left.set_title("AMQP and Celery, one client (" + report["client"] + ")")
    levels = [str(row["concurrency"]) for row in report["http"]]
    right.bar(levels, [row["rps"] for row in report["http"]], color="tab:green", label="requests/s")
    right.set_xlabel("concurrency (hey)")
    right.set_ylabel("requests/s")
    latency = right.twinx()
    latency.plot(levels, [row["p50_ms"] for row in report["http"]], "o-", color="tab:orange", label="p50 ms")
    latency.plot(levels, [row["p99_ms"] for row in report["http"]], "s-", color="tab:red", label="p99 ms")
    latency.set_ylabel("latency, ms")
    latency.legend(loc="upper left")
    right.set_title("HTTP API, POST /tasks/ping")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> int:
    """Run the probe, then the HTTP load; print the table, write the JSON and PNG; 0 on success.

    Raises:
        subprocess.CalledProcessError: SSH, rabbitmqctl, the probe or hey failed.
    """
    data = inventory_list(ARGS.inventory)
    hostvars = data["_meta"]["hostvars"]
    broker = data["brokers"]["hosts"][0]
    hosts = sorted(hostvars)
    client = hostvars[ARGS.client]
    vhost = client.get("fleet_vhost", "fleet")
    binding = hostvars[data["workers"]["hosts"][0]].get("celery_worker_bindings", [{}])[0]
    worker_prefetch = int(binding.get("concurrency", 1))  # x worker_prefetch_multiplier 1
    password = secrets.token_hex(16)
    ctl = ["rabbitmqctl", "--quiet"]
    ssh(ARGS.ssh_config, broker, [*ctl, "add_user", BENCH_USER, password])
    try:
        ssh(ARGS.ssh_config, broker, [*ctl, "set_permissions", "-p", vhost, BENCH_USER,
                     r"^fleet\.bench\..*$", r"^(fleet\.bench\..*|amq\.default)$", r"^fleet\.bench\..*$"])  # fmt: skip
        url = f"amqp://{BENCH_USER}:{password}@127.0.0.1:5672/{vhost}"
        throughput, cpu = {}, {}
        for part in ("raw", "celery"):
            before = lab_cpu(hosts)
            out = ssh(
                ARGS.ssh_config,
                ARGS.client,
                ["env", "FLEET_CONFIG=/etc/fleet/fleet.toml", "/opt/fleet/venv/bin/python", "-", url,
                 str(ARGS.count), str(worker_prefetch), part],
                stdin=PROBE,
            )  # fmt: skip
            after = lab_cpu(hosts)
            throughput.update(json.loads(out.strip().splitlines()[-1]))
            if before and after:
                # Messages (raw: 2 x count published and consumed) or tasks (count) in the part.
                per = 2 * ARGS.count if part == "raw" else ARGS.count
                cpu[part] = cpu_per_item(before, after, per)
    finally:
        ssh(ARGS.ssh_config, broker, [*ctl, "delete_user", BENCH_USER])
    token = (ROOT / ARGS.secrets_dir / "api_token_operator").read_text().split()[0]
    api = f"{ARGS.scheme}://{client['ansible_host']}:8000/tasks/ping"
    http = [dict(concurrency=c, **http_load(api, token, c, ARGS.duration)) for c in ARGS.concurrency]
    raw = throughput["raw kombu publish (confirms)"]
    report = {
        "client": ARGS.client,
        "count": ARGS.count,
        "throughput": throughput,
        "ratio_to_raw_publish": {name: rate / raw for name, rate in throughput.items()},
        "http": http,
        "cpu_ms_per_item": cpu,
    }
    print(f"{'series (' + str(ARGS.count) + ' each, from ' + ARGS.client + ')':<46} {'per s':>9} {'x raw publish':>14}")
    for name, rate in throughput.items():
        print(f"{name:<46} {rate:>9.1f} {rate / raw:>14.2f}")
    title = f"HTTP API POST /tasks/ping (hey, {ARGS.duration} s)"
    print(f"\n{title:<46} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for row in http:
        level = f"concurrency {row['concurrency']}"
        print(f"{level:<46} {row['rps']:>9.1f} {row['p50_ms']:>8.1f} {row['p99_ms']:>8.1f} {row['non_2xx']:>8}")
    if cpu:
        print(f"\n{'CPU ms per message (raw) or task (celery), per host':<46} {'raw':>9} {'celery':>9}")
        for host in [*hosts, "machine"]:
            print(f"{host:<46} {cpu['raw'][host]:>9.2f} {cpu['celery'][host]:>9.2f}")
        busy = {part: cpu[part]["machine_busy"] for part in cpu}
        print(f"{'machine busy (of ' + str(NCPU) + ' cores)':<46} {busy['raw']:>9.0%} {busy['celery']:>9.0%}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench.json").write_text(json.dumps(report, indent=2))
    plot(report, RESULTS / "bench.png")
    print(f"\nwritten: {RESULTS / 'bench.json'}, {RESULTS / 'bench.png'}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--client", default="web1", help="inventory host (a producer) the AMQP and Celery series run on"
    )
    parser.add_argument("--count", type=int, default=500, help="messages and tasks per series")
    parser.add_argument("--duration", type=float, default=8, help="seconds of HTTP load per concurrency level")
    parser.add_argument("--concurrency", type=int, nargs=3, default=[4, 16, 64], help="three HTTP concurrency levels")
    parser.add_argument("--ssh-config", default=str(ROOT / ".lab" / "ssh_config"))
    parser.add_argument("--inventory", default="inventory/lab")
    parser.add_argument("--secrets-dir", default="inventory/lab/.secrets", help="where the API token files are")
    parser.add_argument("--scheme", default="https", help="the API's scheme (http with fleet_tls: false)")
    ARGS = parser.parse_args()
    sys.exit(main())
