"""Measure what TLS costs a connection on a deployed stack, from one client host.

Usage: python tools/bench_tls.py [--client worker1] [--count 200] [--ssh-config .lab/ssh_config]
                                 [--inventory inventory/lab]

On the client host (over SSH), with the host's own certificate and the stack's CA
(roles/pki, /etc/celery-fleet/tls/), it times ``--count`` times each: a TCP connect to the first
broker's AMQPS port and to Redis, the same connect followed by the TLS handshake (mutual: the
client presents its certificate), and an AMQP connection opened and closed through the local
HAProxy (kombu from the app's venv, as Celery opens one: HAProxy adds its TLS leg to the node).
Prints the median and 90th percentile in milliseconds and the handshake's share (TLS minus TCP),
and writes them to ``results/bench-tls.json``. Nothing here asserts a time: the figures go into
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from lab_inventory import inventory_list

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"

#: Runs on the client host with the app's Python. argv: broker address, Redis address, count.
PROBE = r"""
import json, socket, ssl, statistics, sys, time
from kombu import Connection
from fleet.settings import load_settings

broker, redis, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context(cafile="/etc/celery-fleet/tls/ca.crt")
ctx.load_cert_chain("/etc/celery-fleet/tls/host.crt", "/etc/celery-fleet/tls/host.key")

def timed(fn):
    out = []
    for _ in range(count):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out

def tcp(address, port):
    socket.create_connection((address, port), 5).close()

def tls(address, port):
    sock = ctx.wrap_socket(socket.create_connection((address, port), 5), server_hostname=address)
    sock.close()

def amqp():
    with Connection(load_settings().broker_urls[0], connect_timeout=5) as conn:
        conn.connect()

series = {
    "broker 5671 TCP connect": timed(lambda: tcp(broker, 5671)),
    "broker 5671 TCP + TLS handshake": timed(lambda: tls(broker, 5671)),
    "redis 6379 TCP connect": timed(lambda: tcp(redis, 6379)),
    "redis 6379 TCP + TLS handshake": timed(lambda: tls(redis, 6379)),
    "AMQP connection via local HAProxy (TLS to the node)": timed(amqp),
}
print(json.dumps(series))
"""


def inventory_hosts(inventory: str) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(host -> ansible_host, group -> hosts) of ``inventory`` (after inventory/stack).

    Raises:
        subprocess.CalledProcessError: ansible-inventory failed.
    """
    data = inventory_list(inventory)
    return (
        {h: v["ansible_host"] for h, v in data["_meta"]["hostvars"].items()},
        {g: data[g]["hosts"] for g in ("brokers", "backends")},
    )


def percentile(values: list[float], share: float) -> float:
    """The value below which ``share`` (0..1) of ``values`` lie (nearest rank), in their unit."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    """Run the probe on the client host and print the table; 0 on success.

    Raises:
        subprocess.CalledProcessError: SSH or the probe failed (a TLS error included).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", default="worker1", help="inventory host the probes run on")
    parser.add_argument("--count", type=int, default=200, help="connections per series")
    parser.add_argument("--ssh-config", default=str(ROOT / ".lab" / "ssh_config"))
    parser.add_argument("--inventory", default="inventory/lab")
    args = parser.parse_args()
    hosts, groups = inventory_hosts(args.inventory)
    broker, redis = hosts[groups["brokers"][0]], hosts[groups["backends"][0]]
    run = subprocess.run(
        ["ssh", "-F", args.ssh_config, args.client, "env", "FLEET_CONFIG=/etc/fleet/fleet.toml",
         "/opt/fleet/venv/bin/python", "-", broker, redis, str(args.count)],
        input=PROBE, capture_output=True, text=True, check=True,
    )  # fmt: skip
    series = json.loads(run.stdout.strip().splitlines()[-1])
    rows = {name: {"median_ms": statistics.median(v), "p90_ms": percentile(v, 0.9)} for name, v in series.items()}
    for target in ("broker 5671", "redis 6379"):
        handshake = rows[f"{target} TCP + TLS handshake"]["median_ms"] - rows[f"{target} TCP connect"]["median_ms"]
        rows[f"{target} TLS handshake alone (median difference)"] = {"median_ms": handshake, "p90_ms": None}
    print(f"{'series (' + str(args.count) + ' each, from ' + args.client + ')':<62} {'median ms':>10} {'p90 ms':>8}")
    for name, row in rows.items():
        p90 = "" if row["p90_ms"] is None else f"{row['p90_ms']:.2f}"
        print(f"{name:<62} {row['median_ms']:>10.2f} {p90:>8}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench-tls.json").write_text(json.dumps({"client": args.client, "count": args.count, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
