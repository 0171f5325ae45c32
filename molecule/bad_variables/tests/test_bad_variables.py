"""Each role rejects a bad variable with a clear message, and the host is left exactly as it was.

Runs on the controller (not through testinfra): for each case, ``apply-role.yml`` applies one
role to the scenario's bare host with a bad value; the run must fail, print the expected reason,
and leave the container's filesystem unchanged (``podman diff`` plus checksums of /etc, /opt and
dpkg's package database).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import molecule_hosts

HERE = Path(__file__).resolve().parents[1]
INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")
pytestmark = pytest.mark.skipif(not INVENTORY, reason="runs as the verifier of `molecule test -s bad_variables`")

# (role, variables, text the failure must contain). Connection settings that a role needs are
# valid in each case, so the one bad value is what stops it.
APP = {
    "fleet_app_broker_addresses": ["10.0.0.11"],
    "fleet_app_broker_user": "fleet-worker",
    "fleet_app_broker_password": "secret",
    "fleet_app_result_backend_address": "10.0.0.20",
    "fleet_app_result_backend_password": "secret",
}
CASES = {
    "rabbitmq-wrong-type": ("rabbitmq", {"rabbitmq_amqp_port": "five"}, "argument 'rabbitmq_amqp_port' is of type"),
    "rabbitmq-unknown-choice": (
        "rabbitmq",
        {"rabbitmq_cluster_partition_handling": "pause_all"},
        "value of rabbitmq_cluster_partition_handling must be one of: ignore, pause_minority, autoheal",
    ),
    "rabbitmq-user-missing-vhost": (
        "rabbitmq",
        {"rabbitmq_users": [{"name": "app", "password": "x"}]},
        "missing required arguments: vhost",
    ),
    "rabbitmq-two-nodes-pause-minority": (
        "rabbitmq",
        {
            "rabbitmq_erlang_cookie": "C" * 32,
            "rabbitmq_cluster_hosts": ["{{ inventory_hostname }}", "other"],
        },
        "pause_minority cannot work with exactly 2 nodes",
    ),
    "rabbitmq-short-cookie": ("rabbitmq", {"rabbitmq_erlang_cookie": "short"}, "(got 5)"),
    "rabbitmq-no-quorum-members": (
        "rabbitmq",
        {"rabbitmq_erlang_cookie": "C" * 32, "rabbitmq_quorum_target_group_size": 0},
        "rabbitmq_quorum_target_group_size must be 1 or more (got 0)",
    ),
    "rabbitmq-erlang-pin-disagrees": (
        "rabbitmq",
        {
            "rabbitmq_erlang_cookie": "C" * 32,
            "rabbitmq_package_source": "team-rabbitmq",
            "rabbitmq_team_version": "4.3.2",
            "rabbitmq_team_erlang_version": "26",
        },
        "Erlang 26 (rabbitmq_team_erlang_version) is not supported by RabbitMQ 4.3.2",
    ),
    "rabbitmq-unknown-series": (
        "rabbitmq",
        {
            "rabbitmq_erlang_cookie": "C" * 32,
            "rabbitmq_package_source": "team-rabbitmq",
            "rabbitmq_team_version": "5.0.1",
        },
        "RabbitMQ 5.0.1 (rabbitmq_team_version) is not a series the role knows",
    ),
    "rabbitmq-unknown-source": (
        "rabbitmq",
        {"rabbitmq_package_source": "ppa"},
        "value of rabbitmq_package_source must be one of: debian, team-rabbitmq",
    ),
    "redis-unknown-policy": (
        "redis",
        {"redis_maxmemory_policy": "lru"},
        "value of redis_maxmemory_policy must be one of",
    ),
    "redis-every-address": (
        "redis",
        {"redis_bind_addresses": ["0.0.0.0"], "redis_requirepass": "secret"},
        "not bound to every address",
    ),
    "redis-without-loopback": (
        "redis",
        {"redis_bind_addresses": ["10.0.0.5"], "redis_requirepass": "sixteen-characters"},
        "127.0.0.1 among them",
    ),
    "redis-memory-alarm-at-the-cap": (
        "redis",
        {"redis_requirepass": "sixteen-characters", "redis_memory_alarm_percent": 100},
        "redis_memory_alarm_percent must be 0 (off) to 99",
    ),
    "redis-tls-without-certificates": (
        "redis",
        {"redis_bind_addresses": ["127.0.0.1"], "redis_requirepass": "sixteen-characters", "redis_tls": True},
        "redis serves TLS but",
    ),
    "rabbitmq-tls-without-certificates": (
        "rabbitmq",
        {"rabbitmq_erlang_cookie": "C" * 32, "rabbitmq_tls_distribution": True},
        "rabbitmq serves TLS but",
    ),
    "supervisor-world-writable-socket": (
        "supervisor",
        {"supervisor_socket_mode": "0777"},
        "value of supervisor_socket_mode must be one of: 0700, 0770",
    ),
    "broker_proxy-backend-without-address": (
        "broker_proxy",
        {"broker_proxy_backends": [{"name": "broker1"}]},
        "missing required arguments: address",
    ),
    "fleet_app-unknown-role": (
        "fleet_app",
        {**APP, "fleet_app_role": "admin"},
        "value of fleet_app_role must be one of",
    ),
    "fleet_app-api-limit-zero": (
        "fleet_app",
        {**APP, "fleet_app_api_max_body_bytes": 0},
        "fleet_app_api_max_body_bytes (0) and fleet_app_api_max_json_depth (32) must be 1 or more",
    ),
    "fleet_app-producer-short-token": (
        "fleet_app",
        {**APP, "fleet_app_role": "producer", "fleet_app_api_tokens": {"ops": "short-token"}},
        "A producer needs fleet_app_api_tokens: one or more clients",
    ),
    "firewall-bad-source": (
        "firewall",
        {"firewall_allow": [{"name": "api", "port": 8000, "sources": ["10.0.0.0/24", "web1"]}]},
        "not understood: web1",
    ),
    "firewall-port-not-a-number": (
        "firewall",
        {"firewall_allow": [{"name": "api", "port": "http", "sources": ["10.0.0.5"]}]},
        "argument 'port' is of type",
    ),
    "firewall-range-backwards": (
        "firewall",
        {"firewall_allow": [{"name": "cli", "port": 35682, "port_end": 35672, "sources": ["10.0.0.5"]}]},
        "not so in cli",
    ),
    "firewall-ssh-lockout": (
        "firewall",
        {"firewall_ssh_sources": ["192.0.2.10"]},
        "the ruleset would cut the play off",
    ),
    "fleet_app-missing-password": (
        "fleet_app",
        {**APP, "fleet_app_broker_password": ""},
        "fleet_app needs fleet_app_broker_addresses, fleet_app_broker_user, fleet_app_broker_password",
    ),
    "producer-wrong-type": ("producer", {"producer_workers": "many"}, "argument 'producer_workers' is of type"),
    "producer-stop-shorter-than-timeout": (
        "producer",
        {"producer_stopwaitsecs": 10, "fleet_app_environment": {"FLEET_RELEASE": "r1"}},
        "producer_stopwaitsecs must exceed producer_timeout",
    ),
    "celery_worker-unknown-pool": (
        "celery_worker",
        {"celery_worker_bindings": [{"name": "io", "queues": ["email"], "pool": "eventlet"}]},
        "value of pool must be one of: prefork, threads, solo",
    ),
    "celery_worker-binding-without-queues": (
        "celery_worker",
        {"celery_worker_bindings": [{"name": "io"}]},
        "missing required arguments: queues",
    ),
    "celery_worker-unknown-queue": (
        "celery_worker",
        {
            "celery_worker_bindings": [{"name": "io", "queues": ["sms"]}],
            "fleet_app_environment": {"FLEET_RELEASE": "r1"},
        },
        "(unknown: sms)",
    ),
}


def apply_role(role: str, variables: dict, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    """Run apply-role.yml with ``role`` and ``variables`` (extra vars) on the scenario's host."""
    path = tmp_path / "vars.json"
    path.write_text(json.dumps({"role_under_test": role, **variables}))
    return subprocess.run(
        [
            shutil.which("ansible-playbook") or "ansible-playbook",
            "-i",
            INVENTORY,
            str(HERE / "apply-role.yml"),
            "-e",
            f"@{path}",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, ANSIBLE_FORCE_COLOR="0", NO_COLOR="1"),
    )


def podman(*args: str) -> str:
    return subprocess.run(["podman", *args], check=True, capture_output=True, text=True).stdout


def host_state(name: str) -> tuple[str, str]:
    """(podman diff of the container, checksums of /etc, /opt and dpkg's status inside it)."""
    diff = "\n".join(sorted(podman("diff", name).splitlines()))
    sums = podman(
        "exec",
        name,
        "sh",
        "-c",
        "find /etc /opt /var/lib/dpkg/status -xdev -type f -print0 2>/dev/null | sort -z | xargs -0 md5sum",
    )
    return diff, sums


@pytest.mark.parametrize("case", sorted(CASES))
def test_role_refuses_bad_value_before_any_change(case, tmp_path):
    role, variables, reason = CASES[case]
    (name,) = molecule_hosts(INVENTORY)
    before = host_state(name)
    run = apply_role(role, variables, tmp_path)
    output = run.stdout + run.stderr
    assert run.returncode != 0, output
    assert reason in output, output
    assert "changed=0" in output, output
    assert host_state(name) == before


def test_team_rabbitmq_source_renders_its_pins_and_debian_removes_them(tmp_path):
    """Team RabbitMQ's repositories cannot be reached from CI: what can be checked is what the role
    writes for them (a deb822 source per repository, signed by the given key, and the pins of
    RabbitMQ and Erlang), and that going back to Debian's archive removes it all."""
    (name,) = molecule_hosts(INVENTORY)
    team = {
        "rabbitmq_erlang_cookie": "C" * 32,
        "rabbitmq_package_source": "team-rabbitmq",
        "rabbitmq_team_version": "4.1.4",
        "rabbitmq_team_erlang_version": "27",
        "rabbitmq_team_signing_key": "-----BEGIN PGP PUBLIC KEY BLOCK-----\ntest\n-----END PGP PUBLIC KEY BLOCK-----",
    }
    run = apply_role("rabbitmq", team, tmp_path, "--tags", "rabbitmq_package_source")
    assert run.returncode == 0, run.stdout + run.stderr
    sources = podman("exec", name, "cat", "/etc/apt/sources.list.d/rabbitmq-team.sources")
    assert "URIs: https://deb1.rabbitmq.com/rabbitmq-erlang/debian/trixie" in sources
    assert "URIs: https://deb1.rabbitmq.com/rabbitmq-server/debian/trixie" in sources
    assert sources.count("Signed-By: /etc/apt/keyrings/rabbitmq-team.asc") == 2
    pins = podman("exec", name, "cat", "/etc/apt/preferences.d/rabbitmq-team.pref")
    assert "Package: rabbitmq-server\nPin: version 4.1.4-*\nPin-Priority: 1001" in pins
    assert "Package: erlang*\nPin: version 1:27.*\nPin-Priority: 1001" in pins
    # apt reads both files as they are written (a syntax error would fail here).
    policy = podman("exec", name, "apt-cache", "policy", "rabbitmq-server")
    assert "rabbitmq-server" in policy

    run = apply_role("rabbitmq", {"rabbitmq_erlang_cookie": "C" * 32}, tmp_path, "--tags", "rabbitmq_package_source")
    assert run.returncode == 0, run.stdout + run.stderr
    left = podman("exec", name, "sh", "-c", "ls /etc/apt/sources.list.d /etc/apt/preferences.d /etc/apt/keyrings")
    assert "rabbitmq-team" not in left
