"""End-to-end: what each lab host exposes, and to whom (issue: least exposure).

Every listening socket of the stack is on loopback or the host's private address (sshd alone
listens on every address); nftables runs on every host with the stack's table, input policy
drop; a host reaches the ports its tier uses and no port of a tier it has no business with
(a worker cannot reach the management UI, the Erlang distribution or the API); what is dropped
is counted. Read-only: nothing here changes the lab.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.e2e

TABLE = "celery_fleet"  # roles/firewall/defaults/main.yml
#: The only socket allowed on every address: sshd, how Ansible and operators reach a host.
WILDCARD_ALLOWED = {22}


def _listening(host) -> list[tuple[str, int, str]]:
    """Listening TCP sockets of a host as (address, port, process), from ``ss -Htlnp``."""
    rows = []
    for line in host.check_output("ss -Htlnp").splitlines():
        fields = line.split()
        local = fields[3]
        address, port = local.rsplit(":", 1)
        process = fields[5] if len(fields) > 5 else ""
        rows.append((address.strip("[]").split("%")[0], int(port), process))
    return rows


def _reachable(host, targets: list[tuple[str, int]], timeout: float = 2.0) -> dict[str, bool]:
    """Whether ``host`` completes a TCP connection to each (address, port) within timeout seconds.

    Returns:
        {"address:port": True/False}; the probes run on ``host`` itself (its python3), one
        after the other, so a dropped port costs ``timeout`` seconds.
    """
    script = (
        "import json, socket, sys\n"
        "out = {}\n"
        "for a, p in json.loads(sys.argv[1]):\n"
        "    try:\n"
        f"        socket.create_connection((a, p), {timeout}).close(); out[f'{{a}}:{{p}}'] = True\n"
        "    except OSError:\n"
        "        out[f'{a}:{p}'] = False\n"
        "print(json.dumps(out))\n"
    )
    argv = json.dumps([list(t) for t in targets])
    return json.loads(host.check_output("python3 -c %s %s", script, argv))


def _dropped(host) -> int:
    """Packets the stack's table dropped and counted on ``host`` (counter ``dropped``)."""
    data = json.loads(host.check_output(f"nft --json list counter inet {TABLE} dropped"))
    return next(item["counter"]["packets"] for item in data["nftables"] if "counter" in item)


def test_every_listening_socket_is_on_loopback_or_the_hosts_private_address(lab):
    for name, address in lab.hosts.items():
        own = {"127.0.0.1", "::1", address}
        exposed = [row for row in _listening(lab.host(name)) if row[0] not in own and row[1] not in WILDCARD_ALLOWED]
        if name in lab.groups["producers"] and lab.api_address:
            # Every producer binds the API's floating address (held by one of them at a time), for the API only.
            assert (lab.api_address, 8000) in {row[:2] for row in exposed}, (name, exposed)
            exposed = [row for row in exposed if row[:2] != (lab.api_address, 8000)]
        assert not exposed, f"{name} listens beyond loopback and {address}: {exposed}"


def test_nftables_active_with_the_stacks_table_on_every_host(lab):
    for name in lab.hosts:
        host = lab.host(name)
        assert host.service("nftables").is_enabled, name
        data = json.loads(host.check_output(f"nft --json list chain inet {TABLE} input"))
        chain = next(item["chain"] for item in data["nftables"] if "chain" in item)
        assert chain["policy"] == "drop", (name, chain)


def test_a_worker_reaches_its_brokers_backends_and_sentinels_and_nothing_else(lab):
    broker, web, worker = lab.groups["brokers"][0], lab.groups["producers"][0], lab.groups["workers"][0]
    b, w = lab.hosts[broker], lab.hosts[web]
    got = _reachable(
        lab.host(worker),
        [(b, 5671), (w, 6379), (b, 26379), (b, 15671), (b, 25672), (b, 4369), (w, 8000), (w, 5555), (w, 26379)],
    )
    assert got == {
        f"{b}:5671": True,
        f"{w}:6379": True,
        f"{b}:26379": True,
        f"{b}:15671": False,
        f"{b}:25672": False,
        f"{b}:4369": False,
        f"{w}:8000": False,
        f"{w}:5555": False,
        f"{w}:26379": False,
    }


def test_a_broker_reaches_its_peers_and_as_a_sentinel_the_result_backend_but_not_the_api(lab):
    broker, peer, web = lab.groups["brokers"][0], lab.groups["brokers"][1], lab.groups["producers"][0]
    p, w = lab.hosts[peer], lab.hosts[web]
    got = _reachable(lab.host(broker), [(p, 25672), (p, 4369), (p, 26379), (w, 6379), (w, 8000)])
    assert got == {f"{p}:25672": True, f"{p}:4369": True, f"{p}:26379": True, f"{w}:6379": True, f"{w}:8000": False}


def test_a_backend_reaches_its_peer_backends_redis_and_the_sentinels_but_not_the_brokers_cluster_ports(lab):
    # In the lab both backends are producers too, so they reach AMQP as clients (tested above for a worker).
    first, second = lab.groups["backends"][0], lab.groups["backends"][-1]
    broker = lab.hosts[lab.groups["brokers"][0]]
    got = _reachable(lab.host(second), [(lab.hosts[first], 6379), (broker, 26379), (broker, 25672)])
    assert got == {f"{lab.hosts[first]}:6379": True, f"{broker}:26379": True, f"{broker}:25672": False}


def test_what_is_dropped_is_counted(lab):
    broker, worker = lab.groups["brokers"][0], lab.groups["workers"][0]
    before = _dropped(lab.host(broker))
    assert _reachable(lab.host(worker), [(lab.hosts[broker], 15671)]) == {f"{lab.hosts[broker]}:15671": False}
    assert _dropped(lab.host(broker)) > before


def test_the_cli_tools_get_every_nodes_answer_through_the_firewall(lab):
    """list_queues streams each node's answer back to the CLI tool's own node: the brokers admit it."""
    for name in lab.groups["brokers"]:
        out = lab.host(name).run("rabbitmqctl --quiet --timeout 30 list_queues -p fleet name type --formatter json")
        assert out.rc == 0, (name, out.stderr)
        assert {q["type"] for q in json.loads(out.stdout)} >= {"quorum"}, name
