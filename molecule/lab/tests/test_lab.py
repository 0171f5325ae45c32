"""roles/lab: one systemd container per host, on a fixed address, reachable over SSH."""

import json
import os
import subprocess
from pathlib import Path

import pytest

CONTAINER = "celery-fleet-molecule-labhost"
ADDRESS = "10.213.44.10"
LAB_DIR = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "lab"
pytestmark = pytest.mark.skipif(not LAB_DIR.is_dir(), reason="runs as the verifier of `molecule test -s lab`")


def run(*argv: str) -> str:
    env = dict(os.environ, CONTAINERS_CONF=str(LAB_DIR / "containers.conf"))
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=120, env=env).stdout


@pytest.fixture(scope="module")
def inspect() -> dict:
    return json.loads(run("podman", "inspect", CONTAINER))[0]


def test_container_runs_systemd_as_pid_1(inspect):
    assert inspect["State"]["Running"]
    assert run("podman", "exec", CONTAINER, "systemctl", "is-system-running", "--wait").strip() == "running"
    assert run("podman", "exec", CONTAINER, "ps", "-o", "comm=", "-p", "1").strip() == "systemd"


def test_fixed_address_on_the_lab_network(inspect):
    networks = inspect["NetworkSettings"]["Networks"]
    assert networks["celery-fleet-molecule"]["IPAddress"] == ADDRESS
    subnet = json.loads(run("podman", "network", "inspect", "celery-fleet-molecule"))[0]["subnets"][0]["subnet"]
    assert subnet == "10.213.44.0/24"


def test_limits_and_capabilities(inspect):
    assert "CAP_NET_ADMIN" in inspect["EffectiveCaps"]
    limits = run("podman", "exec", CONTAINER, "bash", "-c", "ulimit -n; ulimit -u").split()
    assert limits == ["20000", "20000"]


def test_ssh_login_with_the_generated_config():
    out = run("ssh", "-F", str(LAB_DIR / "ssh_config"), "labhost", "hostname")
    assert out.strip() == "labhost"


def test_runtime_is_runc(inspect):
    assert inspect["OCIRuntime"] == "runc"
