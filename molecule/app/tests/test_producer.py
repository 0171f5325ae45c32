"""roles/producer: Gunicorn under supervisord, on the private address only, answering the API."""

import json
import os
from pathlib import Path

from conftest import private_address

#: The producer runs on the scenario's web host only.
testinfra_hosts = ["podman://molecule-web"]


def curl(host, method: str, path: str, body: str | None = None) -> tuple[int, dict]:
    data = f"-H 'Content-Type: application/json' --data '{body}'" if body is not None else ""
    out = host.check_output(
        f"curl -s -X {method} {data} -w '\\n%{{http_code}}' http://{private_address(host)}:8000{path}"
    )
    payload, status = out.rsplit("\n", 1)
    return int(status), json.loads(payload)


def test_program_running_under_supervisord(host):
    out = host.check_output("supervisorctl status producer")
    assert "RUNNING" in out


def test_program_definition(host):
    conf = host.file("/etc/supervisor/conf.d/producer.conf")
    assert conf.contains("^user=fleet$")
    assert conf.contains("^stopwaitsecs=35$")
    assert conf.contains("--timeout 30")


def test_bound_to_private_address_only(host):
    assert host.socket(f"tcp://{private_address(host)}:8000").is_listening
    assert not host.socket("tcp://0.0.0.0:8000").is_listening
    assert not host.socket("tcp://127.0.0.1:8000").is_listening


def test_gunicorn_runs_as_the_app_user(host):
    procs = host.process.filter(comm="gunicorn")
    assert len(procs) == 3  # master + producer_workers (2)
    assert {p.user for p in procs} == {"fleet"}


def test_healthz_reports_broker_and_backend_ok(host):
    status, body = curl(host, "GET", "/healthz")
    assert status == 200, body
    assert body == {"status": "ok", "broker": "ok", "result_backend": "ok"}


def test_task_accepted_and_bad_payload_refused(host):
    status, body = curl(host, "POST", "/tasks/ping", "{}")
    assert status == 202, body
    assert body["queue"] == "default"
    status, body = curl(host, "POST", "/tasks/ping", "not json")
    assert status == 400
    assert "error" in body


def test_flower_behind_basic_auth_on_the_private_address_only(host):
    assert "RUNNING" in host.check_output("supervisorctl status flower")
    conf = host.file("/etc/supervisor/conf.d/flower.conf")
    assert (conf.user, conf.mode) == ("root", 0o600)  # it holds the broker and UI passwords
    address = private_address(host)
    assert host.socket(f"tcp://{address}:5555").is_listening
    assert not host.socket("tcp://0.0.0.0:5555").is_listening
    url = f"http://{address}:5555/api/workers"
    assert host.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' {url}") == "401"
    password = (Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "secrets" / "flower_ui").read_text().strip()
    status = host.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' -u 'flower:{password}' {url}")
    assert status == "200"
