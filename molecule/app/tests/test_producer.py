"""roles/producer: Gunicorn under supervisord, on the private address only, answering the API."""

import json
import os
from pathlib import Path

from conftest import private_address

#: The producer runs on the scenario's web host only.
testinfra_hosts = ["podman://molecule-web"]


def secret(name: str) -> str:
    """A secret the scenario generated (the stack's wiring writes them there)."""
    return (Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "secrets" / name).read_text().strip()


def curl(host, method: str, path: str, body: str | None = None, token: str | None = "operator") -> tuple[int, dict]:
    """One request to the producer API as API client ``token`` (its token read from the secrets), or none."""
    data = f"-H 'Content-Type: application/json' --data '{body}'" if body is not None else ""
    auth = f"-H 'Authorization: Bearer {secret('api_token_' + token)}'" if token else ""
    out = host.check_output(
        f"curl -s -X {method} {data} {auth} -w '\\n%{{http_code}}' https://{private_address(host)}:8000{path}"
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


def test_the_api_needs_a_token_and_the_host_keeps_only_its_digest(host):
    status, body = curl(host, "POST", "/tasks/ping", "{}", token=None)
    assert status == 401, body
    assert curl(host, "POST", "/tasks/ping", "{}", token="demo")[0] == 202
    config = host.file("/etc/fleet/fleet.toml").content_string
    assert "[api_tokens]" in config
    for client in ("operator", "demo", "drills"):
        assert f'{client} = "sha256:' in config
        assert secret(f"api_token_{client}") not in config


def test_flower_behind_basic_auth_on_the_private_address_only(host):
    assert "RUNNING" in host.check_output("supervisorctl status flower")
    conf = host.file("/etc/supervisor/conf.d/flower.conf")
    assert (conf.user, conf.mode) == ("root", 0o600)  # it holds the broker and UI passwords
    address = private_address(host)
    assert host.socket(f"tcp://{address}:5555").is_listening
    assert not host.socket("tcp://0.0.0.0:5555").is_listening
    url = f"https://{address}:5555/api/workers"  # the host trusts the stack's CA (roles/pki)
    assert host.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' {url}") == "401"
    password = secret("flower_ui")
    status = host.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' -u 'flower:{password}' {url}")
    assert status == "200"
