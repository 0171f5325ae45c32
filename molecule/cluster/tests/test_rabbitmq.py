"""roles/rabbitmq, on each node of molecule/cluster: service, listeners, cookie, users and their exact permissions."""

import json

from conftest import assert_running_and_enabled, private_address, rabbitmqctl_json


def test_rabbitmq_running_and_enabled(host):
    assert_running_and_enabled(host, "rabbitmq-server")


def test_amqp_management_prometheus_distribution_and_epmd_bound_to_private_address_only(host):
    """5672, 15672, 15692, the Erlang distribution port 25672 and epmd 4369: the private address, never a wildcard."""
    address = private_address(host)
    for port in (5672, 15672, 15692, 25672, 4369):
        assert host.socket(f"tcp://{address}:{port}").is_listening
        assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening
        assert not host.socket(f"tcp://:::{port}").is_listening


def test_epmd_also_on_loopback_for_the_cli_tools(host):
    listening = host.check_output("ss -Htln 'sport = :4369'")
    assert "127.0.0.1:4369" in listening
    assert host.run("rabbitmq-diagnostics --quiet ping").rc == 0


def test_own_name_resolves_to_the_private_address_not_a_loopback_alias(host):
    """prepare.yml put a 127.0.1.1 alias first; the role dropped it."""
    name = host.check_output("hostname")
    assert f" {name}" not in host.check_output("grep '^127\\.0\\.1\\.1' /etc/hosts || true")
    assert host.check_output(f"getent ahostsv4 {name}").split()[0] == private_address(host)


CLI_PORTS = "( sport >= :35672 and sport <= :35682 )"  # RabbitMQ's CLI tools' distribution ports


def test_cli_tools_node_listens_on_the_private_address_only(host):
    """While a CLI tool runs, its own node (35672-35682, which the nodes call back) is on the private address.

    The node listens from the CLI tool's start until its call (6 s on the server) returns; the wait
    for it allows 60 s, as a CLI tool's Erlang VM starts slowly on a busy 2-core machine."""
    assert host.file("/etc/rabbitmq/rabbitmq-env.conf").contains("^CTL_ERL_ARGS=")
    listening = host.check_output(
        f"rabbitmqctl eval 'timer:sleep(6000).' >/dev/null 2>&1 & "
        f"timeout 60 sh -c 'until ss -Htln \"{CLI_PORTS}\" | grep -q .; do sleep 0.2; done'; "
        f"ss -Htln '{CLI_PORTS}'; wait"
    )
    addresses = {line.split()[3].rsplit(":", 1)[0] for line in listening.splitlines()}
    assert addresses == {private_address(host)}, listening


def test_erlang_cookie_private_to_rabbitmq(host):
    cookie = host.file("/var/lib/rabbitmq/.erlang.cookie")
    assert cookie.user == "rabbitmq"
    assert cookie.mode == 0o400
    assert cookie.content_string == "MOLECULEMOLECULEMOLECULECOOKIE"


def test_config_values(host):
    conf = host.file("/etc/rabbitmq/rabbitmq.conf")
    assert conf.contains("^cluster_partition_handling = pause_minority$")
    assert conf.contains("^net_ticktime = 10$")
    status = rabbitmqctl_json(host, "cluster_status")
    assert status["cluster_name"] == "fleet"


def test_quorum_membership_reconciliation_running_with_target_five(host):
    """The node runs with the settings rabbitmq.conf gives it (RabbitMQ 4.0 on this scenario)."""
    got = host.check_output(
        "rabbitmqctl --quiet eval '{application:get_env(rabbit, quorum_membership_reconciliation_enabled),"
        " application:get_env(rabbit, quorum_membership_reconciliation_target_group_size)}.'"
    )
    assert got.replace(" ", "") == "{{ok,true},{ok,5}}"


def test_guest_absent_and_only_managed_users(host):
    users = {u["user"]: u["tags"] for u in rabbitmqctl_json(host, "list_users")}
    assert "guest" not in users
    assert set(users) == {"molecule-admin", "fleet-producer", "fleet-monitoring"}
    assert users["fleet-monitoring"] == ["monitoring"]
    assert users["fleet-producer"] == []
    assert users["molecule-admin"] == ["administrator"]


def test_permissions_exact(host):
    perms = {p["user"]: p for p in rabbitmqctl_json(host, "list_permissions", "-p", "fleet")}
    assert set(perms) == {"molecule-admin", "fleet-producer", "fleet-monitoring"}
    assert (
        perms["fleet-producer"]["configure"],
        perms["fleet-producer"]["write"],
        perms["fleet-producer"]["read"],
    ) == (
        "^(fleet|default)$",
        "^(fleet|default)$",
        "^(fleet)$",
    )
    assert (perms["fleet-monitoring"]["configure"], perms["fleet-monitoring"]["write"]) == ("^$", "^$")
    assert perms["fleet-monitoring"]["read"] == "^$"
    admin = perms["molecule-admin"]
    assert (admin["configure"], admin["write"], admin["read"]) == (".*", ".*", ".*")


def test_management_api_answers_monitoring_user_and_refuses_guest(host):
    base = f"http://{private_address(host)}:15672/api"
    ok = host.run(
        f"curl -s -o /dev/null -w '%{{http_code}}' -u fleet-monitoring:molecule-monitoring-password {base}/overview"
    )
    assert ok.stdout == "200"
    guest = host.run(f"curl -s -o /dev/null -w '%{{http_code}}' -u guest:guest {base}/overview")
    assert guest.stdout == "401"


def test_policy_set_as_defined(host):
    policies = rabbitmqctl_json(host, "list_policies", "-p", "fleet")
    assert [(p["name"], p["pattern"], p["apply-to"]) for p in policies] == [
        ("fleet-task-queues", "^(default)$", "queues")
    ]
    definition = policies[0]["definition"]  # RabbitMQ 3.10 prints it as a JSON string
    assert json.loads(definition) == {"delivery-limit": 5, "dead-letter-exchange": "fleet.dead-letter"}


def test_prometheus_metrics_served(host):
    # rabbitmq_prometheus: no authentication, plain text exposition format.
    out = host.check_output(f"curl -sf http://{private_address(host)}:15692/metrics")
    assert "# TYPE rabbitmq_" in out
    assert any(line.startswith("rabbitmq_queues ") for line in out.splitlines())
