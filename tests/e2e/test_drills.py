"""Failover drills on the shared lab: each breaks something mid-stream, restores it, and must
lose no confirmed task. They run before test_stack.py (file order), so the stack assertions and
the idempotence check that follow also prove that every drill restored what it broke.
The other drills (broker-freeze, broker-partition, add-remove-broker, rotate-cookie,
rolling-restart, rolling-upgrade, broker-host-down, all-hosts-down) run in ``make drills`` only: the suite's
45-minute budget (docs/benchmarks.md has their figures).
"""

from __future__ import annotations

import json

import pytest

from .conftest import RESULTS, run_drill, run_playbook

pytestmark = pytest.mark.e2e


def _drill(name: str) -> dict:
    return run_drill(name)[1]


def test_broker_kill_loses_nothing(lab):
    report = _drill("broker-kill")
    assert report["fault_at"] is not None, "the leader was not killed"
    assert report["first_completion_after_fault"] is not None


def test_worker_kill_redelivers_its_tasks(lab):
    report = _drill("worker-kill")
    assert report["fault_at"] is not None, "no worker was killed"
    assert report["redelivered"] >= 1, "the killed worker held no task: nothing was redelivered"


def test_supervisorctl_stop_holds_one_queue_while_others_flow(lab):
    _drill("supervisorctl")
    depths = json.loads((RESULTS / "drill-supervisorctl-depths.json").read_text())
    assert depths["stopped"]["email"] >= 50
    assert depths["stopped"]["default"] < depths["stopped"]["email"]
    assert depths["after_start"]["email"] == 0


def test_a_paused_broker_host_heals_by_itself(lab):
    report = _drill("host-freeze-heal")
    assert report["fault_at"] is not None, "the leader's host was not paused"
    heal = json.loads((RESULTS / "drill-host-freeze-heal-heal.json").read_text())
    print(json.dumps(heal, indent=1))
    assert heal["healed"] is True, heal
    assert all(len(view) == len(lab.groups["brokers"]) for view in heal["last_views"]), heal
    assert not any(heal["partitions"]), heal


def test_rotating_every_password_under_load_loses_nothing(lab):
    before = {name: lab.secret(name) for name in ("rabbitmq_producer", "rabbitmq_worker", "redis", "flower_ui")}
    report = _drill("rotate-secrets")
    assert report["fault_at"] is not None
    # The drill itself checks that each old password is refused and each new one accepted.
    after = {name: lab.secret(name) for name in before}
    assert all(before[name] != after[name] for name in before), "a secret was not rotated"


def test_backend_kill_fails_over_and_loses_no_result_and_no_chord(lab):
    """kill -9 the Redis master mid-stream: the Sentinels promote the replica, and every confirmed
    task's result and every chord's is read back afterwards (the drill exits 1 otherwise)."""
    run = run_playbook("drills/backend-kill.yml")
    assert run.returncode == 0, run.output[-6000:]
    report = json.loads((RESULTS / "drill-backend-kill.json").read_text())
    print(json.dumps({k: v for k, v in report.items() if k not in ("lost", "chords_lost")}, indent=1))
    assert report["fault_at"] is not None, "the master was not killed"
    assert report["lost"] == [] and report["results_ok"] == report["confirmed"] > 0, report["lost"][:20]
    assert report["chords_lost"] == [] and report["chords_ok"] == report["chords_confirmed"] > 0


def test_web_host_down_moves_the_api_address_and_loses_no_accepted_task(lab):
    """Stop the whole producer host that holds the API's floating address (on the lab, also the
    Redis master) under a steady HTTP load: the address answers from the other producer and stays
    there when the host returns (nopreempt), and every task the API accepted is read back as
    SUCCESS through it (the drill exits 1 otherwise)."""
    run = run_playbook("drills/web-host-down.yml")
    assert run.returncode == 0, run.output[-6000:]
    report = json.loads((RESULTS / "drill-web-host-down.json").read_text())
    timeline = json.loads((RESULTS / "drill-web-host-down-failover.json").read_text())
    print(json.dumps({**{k: v for k, v in report.items() if k != "lost"}, **timeline}, indent=1))
    assert timeline["stopped"] == lab.groups["producers"][0], timeline
    assert len(timeline["holders_after"]) == 1 and timeline["stopped"] not in timeline["holders_after"], timeline
    assert report["lost"] == [] and report["succeeded"] == report["accepted"] > 0, report["lost"][:20]
