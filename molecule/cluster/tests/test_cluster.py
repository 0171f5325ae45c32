"""molecule/cluster: three nodes in one cluster seen alike from each, a quorum queue on all three."""

import json

from conftest import rabbitmqctl_json

NODES = {f"rabbit@molecule-broker{i}" for i in (1, 2, 3)}


def test_every_node_sees_three_running_nodes(host):
    status = rabbitmqctl_json(host, "cluster_status")
    assert set(status["disk_nodes"]) == NODES
    assert set(status["running_nodes"]) == NODES
    assert status["cluster_name"] == "fleet"
    assert not status.get("partitions")


def test_late_node_sees_the_users_made_before_it_joined(host):
    users = {u["user"] for u in rabbitmqctl_json(host, "list_users")}
    assert users == {"molecule-admin", "fleet-producer", "fleet-monitoring"}


def test_quorum_queue_has_a_member_on_each_node_and_one_leader(host):
    out = host.check_output("rabbitmq-queues --quiet --formatter json quorum_status molecule-qq --vhost fleet")
    members = json.loads(out)
    assert {m["Node Name"] for m in members} == NODES
    assert [m["Raft State"] for m in members].count("leader") == 1
