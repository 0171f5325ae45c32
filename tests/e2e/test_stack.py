"""End-to-end: the deployed stack, asserted from outside on the running lab.

Order matters only for the tests marked ``after_all`` (run last by conftest.py), which re-run
site.yml and must find nothing to change.
"""

from __future__ import annotations

import base64
import http.client
import json
import secrets
import subprocess
import time
import urllib.request

import pytest
import yaml
from fleet.celeryconfig import QUEUES
from fleet.demo import api_call, auth_headers, run_routing_demo

from tests.static.ansible_vars import generated_secrets

from .conftest import BIN, RESULTS, ROOT, run_playbook

pytestmark = pytest.mark.e2e


def _api(lab) -> str:
    return lab.url("producers", 8000)


def _management(lab, path: str):
    """GET the RabbitMQ management API of the first broker as the monitoring user."""
    url = lab.url("brokers", 15671, f"/api/{path}")
    token = base64.b64encode(f"fleet-monitoring:{lab.secret('rabbitmq_monitoring')}".encode()).decode()
    req = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
    with urllib.request.urlopen(req, timeout=15) as resp:
        return json.loads(resp.read())


def test_first_deploy_reached_every_host_without_failure(lab):
    recap = lab.first_deploy.recap
    assert set(lab.hosts) <= set(recap)
    for host, counts in recap.items():
        assert counts["failed"] == 0 and counts["unreachable"] == 0, (host, counts)


def test_three_brokers_form_one_cluster(lab):
    brokers = lab.groups["brokers"]
    expected = sorted(f"rabbit@{b}" for b in brokers)
    assert len(expected) == 3
    for name in brokers:
        status = json.loads(lab.host(name).check_output("rabbitmqctl cluster_status --formatter json"))
        assert sorted(status["running_nodes"]) == expected, name
        assert sorted(status["disk_nodes"]) == expected, name
        assert status["cluster_name"] == "fleet"
        assert status["partitions"] == {} or status["partitions"] == [], status["partitions"]


def test_guest_is_gone_and_each_service_has_its_own_user(lab):
    broker = lab.host(lab.groups["brokers"][0])
    users = {u["user"] for u in json.loads(broker.check_output("rabbitmqctl list_users --formatter json"))}
    assert users == {"fleet-producer", "fleet-worker", "fleet-flower", "fleet-monitoring"}
    perms = {
        p["user"]: p for p in json.loads(broker.check_output("rabbitmqctl list_permissions -p fleet --formatter json"))
    }
    assert perms["fleet-monitoring"]["configure"] == perms["fleet-monitoring"]["write"] == "^$"
    assert perms["fleet-producer"]["read"] == "^(fleet)$"
    for user in ("fleet-producer", "fleet-worker", "fleet-flower"):
        assert perms[user]["configure"] not in (".*", ".+"), user
    # Flower touches Celery's event and remote-control entities only, never a task queue.
    assert not any(q in perms["fleet-flower"]["read"] for q in QUEUES)


def test_every_task_queue_is_a_quorum_queue_on_three_nodes(lab):
    queues = {q["name"]: q for q in _management(lab, "queues/fleet")}
    for name in QUEUES:
        assert queues[name]["type"] == "quorum", name
        assert len(queues[name]["members"]) == 3, (name, queues[name]["members"])


def test_each_queue_is_consumed_by_exactly_the_hosts_bound_to_it(lab):
    by_address = {address: name for name, address in lab.hosts.items()}
    consumers: dict[str, set[str]] = {q: set() for q in QUEUES}
    for consumer in _management(lab, "consumers/fleet"):
        queue = consumer["queue"]["name"]
        if queue in consumers:
            consumers[queue].add(by_address.get(consumer["channel_details"]["peer_host"], "unknown"))
    bindings = lab.bindings()
    for queue in QUEUES:
        expected = {host for host, queues in bindings.items() if queue in queues}
        assert consumers[queue] == expected, queue


def test_worker_programs_are_running_under_supervisor(lab):
    for name in lab.groups["workers"]:
        host = lab.host(name)
        status = host.check_output("supervisorctl status")
        programs = dict(line.split()[:2] for line in status.splitlines() if line.strip())
        expected = {f"celery:{b['name']}": "RUNNING" for b in lab.worker_bindings(name)}
        if lab.host_vars(name).get("celery_worker_beat"):
            expected["beat"] = "RUNNING"
        assert programs == expected, status
        sock = host.file("/run/supervisor.sock")
        assert sock.mode & 0o002 == 0, oct(sock.mode)
        assert sock.group == "supervisor"


def test_redis_needs_a_password_and_listens_on_private_addresses_only(lab):
    name = lab.groups["backends"][0]
    host = lab.host(name)
    address = lab.hosts[name]
    files = {"cacert": "ca.crt", "cert": "host.crt", "key": "host.key"}
    tls = "--tls " + " ".join(f"--{flag} /etc/celery-fleet/tls/{name}" for flag, name in files.items())
    assert "NOAUTH" in host.check_output(f"redis-cli {tls} -h {address} ping")
    sockets = [s for s in host.socket.get_listening_sockets() if s.endswith(":6379")]
    assert sorted(s.split("://")[1].rsplit(":", 1)[0] for s in sockets) == sorted([address, "127.0.0.1"])


def test_every_backend_runs_its_memory_alarm_and_passes_it(lab):
    """The memory alarm's timer runs on every backend, and its check (as the redis user, over TLS
    with the host's certificate) reads the server and passes: far below 80 % of maxmemory."""
    for name in lab.groups["backends"]:
        host = lab.host(name)
        timer = host.service("redis-memory-alarm.timer")
        assert timer.is_running and timer.is_enabled, name
        host.run("systemctl reset-failed redis-memory-alarm.service")
        run = host.run("systemctl start redis-memory-alarm.service")
        assert run.rc == 0, (name, host.run("journalctl -o cat -n 5 -u redis-memory-alarm.service").stdout)


def test_every_sentinel_names_the_first_backend_and_sees_its_replicas_and_peers(lab):
    """Three Sentinels on the brokers agree on the master (the first backend, as deployed and as
    every drill leaves it), know each replica, and see the two other Sentinels; the replicas'
    links are up."""
    files = {"cacert": "ca.crt", "cert": "host.crt", "key": "host.key"}
    tls = "--tls " + " ".join(f"--{flag} /etc/celery-fleet/tls/{name}" for flag, name in files.items())
    auth = f"REDISCLI_AUTH={lab.secret('redis')}"
    master = lab.hosts[lab.groups["backends"][0]]
    for name in lab.groups["brokers"]:
        cli = f"{auth} redis-cli {tls} -h 127.0.0.1 -p 26379"
        host = lab.host(name)
        assert host.check_output(f"{cli} SENTINEL get-master-addr-by-name fleet").split() == [master, "6379"], name
        fields = host.check_output(f"{cli} SENTINEL master fleet").split()
        state = dict(zip(fields[::2], fields[1::2], strict=True))
        assert (state["flags"], state["num-other-sentinels"], state["quorum"]) == ("master", "2", "2"), (name, state)
        assert state["num-slaves"] == str(len(lab.groups["backends"]) - 1), (name, state)
    for name in lab.groups["backends"][1:]:
        info = lab.host(name).check_output(f"{auth} redis-cli {tls} -h 127.0.0.1 INFO replication")
        assert "role:slave" in info and "master_link_status:up" in info and f"master_host:{master}" in info, info


def test_producer_is_healthy(lab):
    status, body = api_call(f"{_api(lab)}/healthz")
    assert status == 200, body
    assert body["broker"] == "ok" and body["result_backend"] == "ok"


def _holders(lab) -> list[str]:
    """The producers whose interfaces hold the API's floating address (a list of host names)."""
    return [
        name
        for name in lab.groups["producers"]
        if f"{lab.api_address}/" in lab.host(name).check_output("ip -brief -4 address show")
    ]


def _vrrp_state(lab, name: str) -> str:
    """keepalived's VRRP state on producer ``name`` since its last start: ``"MASTER"``,
    ``"BACKUP"``, or ``""`` while it has passed no checks yet (it then logs no state)."""
    log = lab.host(name).check_output(
        "journalctl -b -o cat --no-pager"
        " _SYSTEMD_INVOCATION_ID=$(systemctl show --property InvocationID --value keepalived.service)"
        " | grep -oE 'Entering [A-Z]+ STATE' | tail -n 1"
    )
    return log.split()[1] if log else ""


def test_the_floating_address_is_held_by_one_producer_alone_and_serves_the_api(lab):
    """keepalived gives the API's floating address to one live producer (the first, when they
    start together; afterwards whichever took it last: nopreempt); the others bind it too but do
    not hold it, and are its backups. Its certificate names the address (the call verifies it
    against the lab's CA)."""
    if not lab.api_address:
        pytest.skip("this inventory has no floating address (fleet_api_virtual_address)")
    holders = _holders(lab)
    assert len(holders) == 1, holders
    assert {name: _vrrp_state(lab, name) for name in lab.groups["producers"]} == {
        name: "MASTER" if name in holders else "BACKUP" for name in lab.groups["producers"]
    }
    status, body = api_call(f"https://{lab.api_address}:8000/healthz")
    assert status == 200, body


def _wait_for(predicate, timeout: float, what: str):
    """Call ``predicate()`` every 0.2 s until it returns a true value, which is returned; raises
    AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.2)


def test_a_request_in_flight_when_the_holder_gives_the_address_away_gets_its_answer(lab):
    """``systemctl stop keepalived`` on the holder (as at its shutdown) first runs the address's
    drain (celery-fleet-api-drain.service, PartOf keepalived): new connections are dropped and the
    open ones finish before the address moves. A request whose body is still unsent when the drain
    starts gets its 202 through the address; then the next producer holds it. Without the drain the
    address left at once and the request's answer could not be sent from it (a CI run's
    web-host-down drill saw one request time out that way). When the old holder's keepalived is
    back, it is a backup and leaves the address where it is (nopreempt: taking it back would move
    it again, undrained)."""
    if not lab.api_address:
        pytest.skip("this inventory has no floating address (fleet_api_virtual_address)")
    (first,) = _holders(lab)
    holder = lab.host(first)
    body = b'{"args": []}'
    conn = http.client.HTTPSConnection(lab.api_address, 8000, timeout=30)
    stop = None
    try:
        conn.putrequest("POST", "/tasks/ping")
        for name, value in {**auth_headers(None), "Content-Type": "application/json"}.items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()  # the headers go out; the body waits until the drain has begun
        stop = subprocess.Popen(
            ["ssh", "-F", str(lab.ssh_config), first, "systemctl stop keepalived"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        _wait_for(
            lambda: holder.run("systemctl is-active celery-fleet-api-drain").stdout.strip() == "deactivating",
            30,
            f"the drain on {first} begins",
        )
        conn.send(body)
        answer = conn.getresponse()
        reply = json.loads(answer.read() or b"{}")
        assert answer.status == 202, reply
        assert reply.get("task_id"), reply
        assert stop.wait(timeout=60) == 0, stop.stdout.read()
        journal = holder.check_output("journalctl -u celery-fleet-api-drain -n 5 --no-pager")
        assert f"drained {lab.api_address}:8000" in journal, journal
        others = _wait_for(lambda: [h for h in _holders(lab) if h != first], 30, "another producer holds the address")
        assert len(others) == 1, others
    finally:
        conn.close()
        if stop is not None and stop.poll() is None:
            stop.wait(timeout=120)
        holder.run("systemctl start keepalived")
        _wait_for(lambda: _vrrp_state(lab, first) == "BACKUP", 60, f"{first}'s keepalived is a backup again")
    assert _holders(lab) == others, "the returned producer took the address back (preemption)"
    status, payload = api_call(f"https://{lab.api_address}:8000/healthz")
    assert status == 200, payload


def test_routing_holds_for_50_tasks_per_queue(lab):
    # Through the floating address where there is one, as the API's clients reach it.
    api = f"https://{lab.api_address}:8000" if lab.api_address else _api(lab)
    report = run_routing_demo(api, lab.bindings(), per_queue=50, timeout=240)
    print(report.table())
    assert report.sent == 50 * len(QUEUES)
    assert not report.unfinished, report.unfinished[:5]
    assert not report.failed, report.failed[:5]
    assert not report.violations, report.violations[:5]
    for queue in QUEUES:
        assert sum(report.ran_on[queue].values()) == 50, queue


def test_routing_demo_playbook_prints_the_table(lab):
    run = run_playbook("demo-routing.yml", "-e", "demo_per_queue=10")
    assert run.returncode == 0, run.output[-3000:]
    assert "ran on (tasks)" in run.output
    assert "Every task ran on a host bound to its queue" in run.output


@pytest.mark.parametrize(
    "method, path, body, status, reason",
    [
        ("POST", "/tasks/format_disk", {}, 404, "unknown task"),
        ("POST", "/tasks/send_email", {"args": "not-a-list"}, 400, "'args' must be a JSON array"),
        ("POST", "/tasks/send_email", {"kwargs": {"bogus": 1}}, 400, "arguments do not match"),
        ("GET", "/tasks/not-a-uuid", None, 400, "UUID"),
    ],
)
def test_api_rejects_bad_input_with_a_json_reason(lab, method, path, body, status, reason):
    got, payload = api_call(f"{_api(lab)}{path}", method, body)
    assert got == status, payload
    assert reason in payload["error"]


@pytest.mark.parametrize(
    "token, body, status, reason",
    [
        ("", {}, 401, "token"),
        ("not-the-token", {}, 401, "token"),
        (None, {"args": [json.loads("[" * 100 + "]" * 100)]}, 400, "deeper than 32 levels"),
    ],
)
def test_the_deployed_api_refuses_without_a_token_and_too_deep(lab, token, body, status, reason):
    got, payload = api_call(f"{_api(lab)}/tasks/ping", "POST", body, token=token)
    assert got == status, payload
    assert reason in payload["error"]


def test_the_deployed_api_refuses_a_2_mib_body_before_reading_it(lab):
    """413 on the length the request announces: the producer answers after the first KiB and
    never reads the rest (a client sending it all would meet a closed connection)."""
    connection = http.client.HTTPSConnection(lab.hosts[lab.groups["producers"][0]], 8000, timeout=15)
    try:
        connection.putrequest("POST", "/tasks/ping")
        for name, value in {
            "Content-Type": "application/json",
            "Content-Length": str(2 * 1024 * 1024),
            **auth_headers(),
        }.items():
            connection.putheader(name, value)
        connection.endheaders(b'{"args": ["' + b"x" * 1024)
        response = connection.getresponse()
        assert response.status == 413
        assert "Too Large" in json.loads(response.read())["error"]
    finally:
        connection.close()


def test_api_rejects_malformed_json(lab):
    headers = {"Content-Type": "application/json", **auth_headers()}
    req = urllib.request.Request(f"{_api(lab)}/tasks/ping", data=b"{oops", method="POST", headers=headers)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 400
    assert "not valid JSON" in json.loads(err.value.read())["error"]


def test_a_failing_task_is_reported_as_failure(lab):
    status, body = api_call(f"{_api(lab)}/tasks/always_fail", "POST", {"kwargs": {"reason": "seeded failure"}})
    assert status == 202
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _, result = api_call(f"{_api(lab)}/tasks/{body['task_id']}")
        if result["state"] in ("SUCCESS", "FAILURE"):
            break
        time.sleep(0.5)
    assert result["state"] == "FAILURE", result
    assert "RuntimeError: seeded failure" in result["error"]


@pytest.mark.parametrize(
    "extra_vars, message, before_any_role",
    [
        ({"celery_worker_stopwaitsecs": "soon"}, "celery_worker_stopwaitsecs", True),
        ({"celery_worker_bindings": [{"name": "bulk", "queues": ["bulk"]}]}, "unknown: bulk", False),
        ({"celery_worker_bindings": [{"name": "x", "queues": ["default"], "pool": "fibers"}]}, "fibers", True),
    ],
)
def test_bad_inventory_values_fail_before_any_change(lab, extra_vars, message, before_any_role):
    """A value its argument spec refuses fails in the play's first task (playbooks/deploy/tasks/
    validate-roles.yml), before any role of the play runs; one only the role's preflight can judge
    (a queue the stack does not route) fails there, with nothing changed either."""
    worker = lab.groups["workers"][0]
    host = lab.host(worker)
    before = host.file("/etc/supervisor/conf.d/celery.conf").sha256sum
    run = run_playbook("deploy/workers.yml", "--limit", worker, "-e", json.dumps(extra_vars))
    assert run.returncode != 0
    assert message in run.output, run.output[-2000:]
    assert run.recap[worker]["changed"] == 0
    assert host.file("/etc/supervisor/conf.d/celery.conf").sha256sum == before
    if before_any_role:
        assert "TASK [broker_proxy :" not in run.output, run.output[-2000:]


def test_the_deployed_api_answers_every_generated_request_as_documented_never_5xx(lab):
    """Property-based, with schemathesis's CLI: requests generated from the deployed API's own
    document (GET /openapi.json), valid and invalid ones, sent to the producer over the lab network
    with a real broker and Redis behind it. Every answer must have a documented status, content
    type and body, and none may be a 5xx. A body the schema allows may still be refused 400 (a
    task's own signature), so that one check is left out, as in tests/unit/test_openapi.py."""
    run = subprocess.run(
        [str(BIN / "st"), "run", f"{_api(lab)}/openapi.json", "--exclude-checks", "positive_data_acceptance",
         "--header", f"Authorization: Bearer {lab.secret('api_token_operator')}", "--tls-verify", str(lab.ca_file),
         "--max-examples", "25", "--request-timeout", "30", "--no-color"],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    assert " passed" in output and "Selected: 5/5" in output, output[-3000:]


#: Files that hold a secret, per inventory group (its first host): a check run with --diff would
#: print them if they drifted and the task that writes them showed its diff.
SECRET_FILES = {
    "producers": ["/etc/fleet/fleet.toml", "/etc/supervisor/conf.d/flower.conf", "/etc/redis/redis-auth.conf"],
    "workers": ["/etc/fleet/fleet.toml"],
}


@pytest.mark.after_all
def test_check_diff_rerun_through_vault_held_secrets_predicts_only_the_drift_and_prints_no_secret(lab, tmp_path):
    """The second site.yml, as the README recommends before a change: ``--check --diff -v``, on
    the deployed stack after files holding secrets drifted on two hosts (a line appended,
    restored afterwards). It runs through inventory/lab-example: the lab's hosts wired as
    inventory/example wires production, every secret read from an encrypted ansible-vault file
    that holds the lab's secrets.

    Check mode predicts changes on the drifted hosts only: the stack is idempotent, and the vault
    wiring yields the same stack (one secret not read from the vault would be generated anew, in
    lab-example's own secrets folder, and change every host that uses it). No secret of the
    secrets folder, and no private key, appears anywhere in the output. One run for the three
    properties: each full site.yml costs the suite over two minutes."""
    example = ROOT / "inventory" / "lab-example"
    vault = example / "group_vars" / "all" / "vault.yml"
    password = tmp_path / "vault-pass"
    password.write_text(secrets.token_hex(16))
    password.chmod(0o600)
    vault.write_text(yaml.safe_dump({f"vault_{name}": lab.secret(file) for name, file in generated_secrets().items()}))
    drifted = {lab.groups[group][0]: paths for group, paths in SECRET_FILES.items()}
    for host, paths in drifted.items():
        for path in paths:
            lab.host(host).check_output(f"cp -a {path} {path}.drift-test && echo '# drift' >> {path}")
    try:
        encrypt = [str(BIN / "ansible-vault"), "encrypt", "--vault-password-file", str(password), str(vault)]
        subprocess.run(encrypt, check=True, capture_output=True)
        run = run_playbook(
            "site.yml", "--check", "--diff", "-v", "--vault-password-file", str(password), inventory=example
        )
    finally:
        vault.unlink()
        for host, paths in drifted.items():
            for path in paths:
                lab.host(host).check_output(f"mv {path}.drift-test {path}")
    lab.second_deploy = run
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "deploy-times.json").write_text(
        json.dumps(
            {"first_deploy_seconds": round(lab.first_deploy.seconds, 1), "check_rerun_seconds": round(run.seconds, 1)}
        )
    )
    assert run.returncode == 0, run.output[-4000:]
    assert not (example / ".secrets").exists(), "a secret was generated instead of read from the vault"
    changed = {host: c["changed"] for host, c in run.recap.items() if c["changed"]}
    assert set(changed) == set(drifted), f"check mode predicts changes on {changed}, drift was on {sorted(drifted)}"
    # Every secret the stack's wiring generates (lab.secret fails on a missing file).
    shown = sorted(name for name in generated_secrets().values() if lab.secret(name) in run.output)
    # And every private key of the lab's PKI (the CA's, each host's): the first line of its PEM
    # body, which holds the private scalar (the last lines of an EC key are its public key, which
    # the certificate's info rightly shows).
    keys = sorted(lab.ca_file.parent.glob("*.key"))
    assert len(keys) >= len(lab.hosts) + 1, keys  # drills that add hosts leave their keys
    shown += [key.name for key in keys if key.read_text().splitlines()[1] in run.output]
    assert not shown, f"secrets printed by --check --diff -v: {shown}"
