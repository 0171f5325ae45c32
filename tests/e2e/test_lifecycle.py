"""End-to-end: the lifecycle as an operator lives it, on the shared lab.

A broker host that dies and comes back blank: the seed broker's container is removed mid-stream (the
host died) and created again from the bare image (the host rebuilt), then ``site.yml`` runs on the
brokers as after any repair (drills/replace-broker.yml). The cluster must converge to one of three
nodes (the blank node joins the running majority, its old identity forgotten before it first
starts), every quorum queue must have three online members again, no confirmed task may be lost, and
routing must still hold. Before the role decided joins from every node's view, this ended with two
clusters and ``site.yml`` exiting 0; before it forgot the old identity first, the cluster's quorum
queues took the blank node for their old member and a queue lost its consumer.
Then the refusals: a new cookie on a running cluster, the removal of a queue's last consumer.
"""

from __future__ import annotations

import json

import pytest
from fleet.celeryconfig import QUEUES

from .conftest import RESULTS, ROOT, run_drill, run_playbook

pytestmark = pytest.mark.e2e


def test_seed_broker_rebuilt_blank_under_load_rejoins_the_one_cluster(lab):
    """drills/replace-broker.yml: the seed's container removed mid-stream, created again blank,
    ``site.yml --limit brokers`` run; the drill itself fails unless every quorum queue ends with
    three online members."""
    brokers = lab.groups["brokers"]
    run_drill("replace-broker")
    # The old identity was forgotten before the blank node first started (roles/rabbitmq), in the
    # drill's site.yml run on the brokers, whose output the drill keeps.
    deploy = (RESULTS / "drill-replace-broker-site.log").read_text()
    assert "forget the old identity" in deploy and f"changed: [{brokers[0]} -> " in deploy, deploy[-6000:]

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
