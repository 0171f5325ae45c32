"""End-to-end: a broker host that dies and comes back blank, as an operator lives it.

The seed broker's container is removed (the host died) and created again from the bare image
(the host rebuilt), then ``site.yml`` runs as after any repair. The cluster must converge to one
of three nodes (the blank node joins the running majority, its old identity forgotten first),
every quorum queue must have three online members again, and routing must still hold. Before the
role decided joins from every node's view, this ended with two clusters and ``site.yml`` exiting 0.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from fleet.celeryconfig import QUEUES

from .conftest import ROOT, run_playbook

pytestmark = pytest.mark.e2e


def _remove_container(host: str) -> None:
    """Remove a lab host's container as a dead host would vanish (not through Ansible).

    Raises:
        subprocess.CalledProcessError: podman could not remove it.
    """
    env = dict(os.environ, CONTAINERS_CONF=str(ROOT / ".lab" / "containers.conf"))
    subprocess.run(["podman", "rm", "-f", "-t", "5", f"celery-fleet-{host}"], env=env, check=True, capture_output=True)
    # SSH master connections to the dead host would be reused otherwise.
    shutil.rmtree(ROOT / ".lab" / "cp", ignore_errors=True)


def test_seed_broker_rebuilt_blank_rejoins_the_one_cluster(lab):
    brokers = lab.groups["brokers"]
    seed = brokers[0]
    _remove_container(seed)
    up = run_playbook("lab/up.yml")
    assert up.returncode == 0, up.output[-3000:]
    assert "rabbitmq" not in lab.host(seed).check_output("ls /var/lib"), "the rebuilt host is not blank"

    deploy = run_playbook("site.yml")
    assert deploy.returncode == 0, deploy.output[-6000:]
    assert "forget_cluster_node" in deploy.output or "old identity" in deploy.output

    expected = sorted(f"rabbit@{b}" for b in brokers)
    for name in brokers:
        status = json.loads(lab.host(name).check_output("rabbitmqctl cluster_status --formatter json"))
        assert sorted(status["running_nodes"]) == expected, (name, status["running_nodes"])
        assert not status["partitions"], (name, status["partitions"])
    queues = json.loads(
        lab.host(brokers[1]).check_output("rabbitmqctl list_queues -p fleet name members online --formatter json")
    )
    by_name = {q["name"]: q for q in queues}
    for name in QUEUES:
        assert sorted(by_name[name]["members"]) == expected, (name, by_name[name]["members"])
        assert sorted(by_name[name]["online"]) == expected, (name, by_name[name]["online"])

    demo = run_playbook("demo-routing.yml")
    assert demo.returncode == 0, demo.output[-3000:]
    assert "misrouted 0" in demo.output


def test_a_new_cookie_on_the_running_cluster_is_refused_before_any_change(lab):
    """A controller whose secrets folder was lost would generate a new Erlang cookie; deploying it
    would stop every broker at once. Without ``rabbitmq_erlang_cookie_rotate`` the role refuses,
    naming the cluster's nodes and the runbook step, and no broker stops."""
    cookie = ROOT / "inventory" / "lab" / ".secrets" / "rabbitmq_erlang_cookie"
    original = cookie.read_text()
    cookie.write_text("Z" * 48)
    try:
        run = run_playbook("deploy/brokers.yml")
    finally:
        cookie.write_text(original)
    assert run.returncode != 0, run.output[-3000:]
    assert "rabbitmq_erlang_cookie_rotate=true" in run.output
    assert "Rotate secrets" in run.output
    assert not any(counts["changed"] for counts in run.recap.values()), run.recap
    for name in lab.groups["brokers"]:
        assert lab.host(name).service("rabbitmq-server").is_running, name
        status = json.loads(lab.host(name).check_output("rabbitmqctl cluster_status --formatter json"))
        assert len(status["running_nodes"]) == len(lab.groups["brokers"]), (name, status["running_nodes"])


def test_removing_the_last_consumer_of_a_queue_is_refused(lab):
    """worker1 is the only host bound to ``email``: removing it would leave that queue without a
    consumer, so remove-worker.yml stops before touching any host."""
    only_email = [w for w in lab.groups["workers"] if "email" in lab.bindings().get(w, [])]
    assert len(only_email) == 1, only_email
    run = run_playbook("operations/remove-worker.yml", "-e", f"fleet_remove_host={only_email[0]}")
    assert run.returncode != 0, run.output[-3000:]
    assert "only consumer of email" in run.output, run.output[-3000:]
    assert "Nothing was changed" in run.output
    assert only_email[0] not in run.recap, run.recap
    assert "celery:email" in lab.host(only_email[0]).check_output("supervisorctl status")
