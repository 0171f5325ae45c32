"""The Celery features the stack demonstrates, asserted from outside on the lab: canvas through
the API, link/link_error, a correlation id in the producer's and the worker's logs, send_task
from a client that imports no task code, and a thread pool running I/O tasks concurrently.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
import uuid

import pytest
from fleet.demo import api_call

pytestmark = pytest.mark.e2e


def _api(lab) -> str:
    return lab.url("producers", 8000)


def _wait_done(lab, path: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        _, body = api_call(f"{_api(lab)}{path}")
        finished = body.get("state") in ("SUCCESS", "FAILURE") or (
            "total" in body and body["completed"] == body["total"]
        )
        if finished or time.monotonic() > deadline:
            return body
        time.sleep(0.5)


def _step(task, *args, **kwargs):
    return {"task": task, "args": list(args), "kwargs": kwargs}


def test_chain_chord_and_group_run_across_the_workers(lab):
    status, body = api_call(f"{_api(lab)}/canvas/chain", "POST", {"steps": [_step("add", 1, 2), _step("add", 3)]})
    assert status == 202, body
    assert _wait_done(lab, f"/tasks/{body['task_id']}")["result"] == 6

    chord = {"header": [_step("add", i, i) for i in range(5)], "body": _step("total")}
    status, body = api_call(f"{_api(lab)}/canvas/chord", "POST", chord)
    assert status == 202, body
    assert _wait_done(lab, f"/tasks/{body['task_id']}")["result"] == 20

    status, body = api_call(f"{_api(lab)}/canvas/group", "POST", {"tasks": [_step("ping") for _ in range(6)]})
    assert status == 202, body
    group = _wait_done(lab, f"/groups/{body['group_id']}")
    assert group["completed"] == group["total"] == 6
    assert {r["result"]["hostname"] for r in group["results"]} <= set(lab.groups["workers"])


def test_map_starmap_and_chunks_return_their_results(lab):
    status, body = api_call(f"{_api(lab)}/canvas/map", "POST", {"task": "total", "items": [[1, 2], [3, 4, 5]]})
    assert status == 202, body
    assert _wait_done(lab, f"/tasks/{body['task_id']}")["result"] == [3, 12]

    status, body = api_call(f"{_api(lab)}/canvas/starmap", "POST", {"task": "add", "items": [[1, 2], [3, 4]]})
    assert status == 202, body
    assert _wait_done(lab, f"/tasks/{body['task_id']}")["result"] == [3, 7]

    items = [[i, i] for i in range(10)]
    status, body = api_call(f"{_api(lab)}/canvas/chunks", "POST", {"task": "add", "items": items, "size": 3})
    assert status == 202, body
    assert len(body["task_ids"]) == 4  # 10 items in chunks of 3
    group = _wait_done(lab, f"/groups/{body['group_id']}")
    assert group["completed"] == group["total"] == 4
    assert [r["result"] for r in group["results"]] == [[0, 2, 4], [6, 8, 10], [12, 14, 16], [18]]


def test_link_runs_the_callback_with_the_result(lab):
    # Numbers no other test uses, so the callback's result identifies its log line.
    payload = {"args": [1000.5, 0.25], "link": {"task": "add", "args": [6.5]}}
    status, body = api_call(f"{_api(lab)}/tasks/add", "POST", payload)
    assert status == 202, body
    assert _wait_done(lab, f"/tasks/{body['task_id']}")["result"] == 1000.75
    deadline = time.monotonic() + 60
    logs = ""
    while time.monotonic() < deadline and "succeeded in" not in logs:
        logs = " ".join(
            lab.host(w).check_output("grep -h ': 1007.25$' /var/log/fleet/celery-default.log || true")
            for w in lab.groups["workers"]
        )
        time.sleep(1)
    assert "fleet.tasks.add[" in logs and "succeeded in" in logs, logs


def test_link_error_records_the_failure_with_its_traceback(lab):
    payload = {"kwargs": {"reason": "linked"}, "link_error": True}
    status, body = api_call(f"{_api(lab)}/tasks/always_fail", "POST", payload)
    assert status == 202, body
    assert _wait_done(lab, f"/tasks/{body['task_id']}")["state"] == "FAILURE"
    logs = " ".join(lab.host(w).check_output("cat /var/log/fleet/celery-default.log") for w in lab.groups["workers"])
    assert f"task fleet.tasks.always_fail[{body['task_id']}] failed: RuntimeError('linked" in logs
    assert "Traceback (most recent call last)" in logs


def test_the_request_id_reaches_the_producer_and_the_worker_logs(lab):
    request_id = f"e2e-{uuid.uuid4()}"
    status, body = api_call(
        f"{_api(lab)}/tasks/send_email",
        "POST",
        {"args": ["ops@example.invalid"], "kwargs": {"duration": 0}},
        headers={"X-Request-ID": request_id},
    )
    assert status == 202, body
    assert body["request_id"] == request_id
    assert _wait_done(lab, f"/tasks/{body['task_id']}")["state"] == "SUCCESS"
    producer_log = lab.host(lab.groups["producers"][0]).check_output("cat /var/log/fleet/producer.log")
    assert f"[{request_id}] published fleet.tasks.send_email as task {body['task_id']}" in producer_log
    worker_lines = [
        line
        for w in lab.groups["workers"]
        for line in lab.host(w).check_output("cat /var/log/fleet/celery-email.log || true").splitlines()
        if body["task_id"] in line
    ]
    assert worker_lines and all(f"[{request_id}]" in line for line in worker_lines), worker_lines


def test_send_task_by_name_from_a_client_without_task_code(lab):
    out = lab.app_python(lab.groups["producers"][0], "-m fleet.client fleet.tasks.add --args '[20, 22]' --wait 60")
    assert '"result": 42' in out and '"state": "SUCCESS"' in out


def test_the_thread_pool_runs_io_tasks_concurrently_in_one_process(lab):
    bindings = {b["name"]: b for w in lab.groups["workers"] for b in lab.worker_bindings(w)}
    concurrency = bindings["email"]["concurrency"]
    assert bindings["email"]["pool"] == "threads"
    ids = []
    for n in range(concurrency):
        status, body = api_call(
            f"{_api(lab)}/tasks/send_email", "POST", {"args": [f"u{n}@example.invalid"], "kwargs": {"duration": 3}}
        )
        assert status == 202
        ids.append(body["task_id"])
    results = [_wait_done(lab, f"/tasks/{i}", timeout=120)["result"] for i in ids]
    assert len({(r["hostname"], r["pid"]) for r in results}) == 1, "one worker process ran them all"
    # Every task started before any finished: all `concurrency` of them ran at the same time.
    assert max(r["started_at"] for r in results) < min(r["finished_at"] for r in results)


def test_one_beat_sends_the_periodic_ping(lab):
    beat_hosts = [w for w in lab.groups["workers"] if lab.host_vars(w).get("celery_worker_beat")]
    assert len(beat_hosts) == 1
    host = lab.host(beat_hosts[0])
    deadline = time.monotonic() + 90
    log = ""
    while time.monotonic() < deadline and "Sending due task ping-every-minute" not in log:
        log = host.check_output("cat /var/log/fleet/beat.log || true")
        time.sleep(2)
    assert "Sending due task ping-every-minute (fleet.tasks.ping)" in log


def test_each_broker_serves_prometheus_metrics_and_the_management_ui(lab):
    for name in lab.groups["brokers"]:
        address = lab.hosts[name]
        with urllib.request.urlopen(f"https://{address}:15691/metrics", timeout=15) as resp:
            metrics = resp.read().decode()
        assert "rabbitmq_identity_info" in metrics or "rabbitmq_build_info" in metrics
        with urllib.request.urlopen(f"https://{address}:15671/", timeout=15) as resp:
            assert resp.status == 200
            assert "RabbitMQ Management" in resp.read().decode()
        assert not lab.host(name).socket("tcp://0.0.0.0:15691").is_listening


def test_flower_answers_behind_basic_auth_on_the_private_address_only(lab):
    web = lab.groups["producers"][0]
    url = lab.url("producers", 5555, "/api/workers")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=15)
    assert refused.value.code == 401
    token = base64.b64encode(f"flower:{lab.secret('flower_ui')}".encode()).decode()
    # Every worker program of the stack answers Flower's remote-control inspect. One refresh
    # may miss a worker whose reply came after Flower's inspect timeout, so ask until all are in.
    expected = {f"{b['name']}@{w}" for w in lab.groups["workers"] for b in lab.worker_bindings(w)}
    deadline = time.monotonic() + 90
    workers: dict = {}
    while time.monotonic() < deadline and not expected <= set(workers):
        request = urllib.request.Request(url + "?refresh=1", headers={"Authorization": f"Basic {token}"})
        with urllib.request.urlopen(request, timeout=30) as resp:
            workers = json.loads(resp.read())
        time.sleep(2)
    assert expected <= set(workers), sorted(workers)
    assert not lab.host(web).socket("tcp://0.0.0.0:5555").is_listening


def test_tasks_from_older_and_newer_producers_both_run(lab):
    web = lab.groups["producers"][0]
    # An older producer knew send_email(to) only; a newer one adds a field this worker lacks.
    older = lab.app_python(web, "-m fleet.client fleet.tasks.send_email --args '[\"old@example.invalid\"]' --wait 60")
    assert '"state": "SUCCESS"' in older, older
    newer = lab.app_python(
        web,
        "-m fleet.client fleet.tasks.send_email "
        '--kwargs \'{"to": "new@example.invalid", "duration": 0, "priority": "low"}\' --wait 60',
    )
    assert '"state": "SUCCESS"' in newer and '"to": "new@example.invalid"' in newer, newer
    logs = " ".join(
        lab.host(w).check_output("cat /var/log/fleet/celery-email.log || true") for w in lab.groups["workers"]
    )
    assert "fleet.tasks.send_email: ignoring arguments this version does not take: ['priority']" in logs
