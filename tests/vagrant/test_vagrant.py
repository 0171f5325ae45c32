"""The Vagrant flow, run for real with Vagrant's docker provider over podman (no hypervisor here).

One ``vagrant up --provider=docker`` brings up the six machines of inventory/vagrant and its
Ansible provisioner deploys site.yml; the routing demo then runs against the machines from
outside with plain ``ansible-playbook -i inventory/vagrant``; ``vagrant halt`` + ``vagrant up``
must bring the stack back; ``vagrant destroy -f`` must leave no container and no image it built
behind. The machines are destroyed at the end, pass or fail. Skipped, with the reason, where
vagrant or podman is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
VAGRANT_DIR = ROOT / "vagrant"
STACK = ROOT / "inventory" / "stack"
INVENTORY = ROOT / "inventory" / "vagrant"
BIN = Path(sys.executable).parent
#: The routing demo's report for these machines: results/routing.json is the lab's, and make test
#: runs this flow beside the e2e tests.
DEMO_REPORT = ROOT / "results" / "routing-vagrant.json"

pytestmark = [
    pytest.mark.vagrant,
    pytest.mark.skipif(shutil.which("vagrant") is None, reason="vagrant is not installed (make setup installs it)"),
    pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed (make setup installs it)"),
]


def _env() -> dict[str, str]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")
    env["PATH"] = f"{VAGRANT_DIR / 'bin'}:{BIN}:{env.get('PATH', '')}"
    env["VAGRANT_DEFAULT_PROVIDER"] = "docker"
    env["VAGRANT_NO_COLOR"] = "1"
    return env


def vagrant(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    """Run ``vagrant <args>`` in vagrant/ with the docker provider over podman; never raises on
    a non-zero exit (the caller asserts), only on ``timeout`` seconds (subprocess.TimeoutExpired)."""
    return subprocess.run(
        ["vagrant", *args], cwd=VAGRANT_DIR, env=_env(), capture_output=True, text=True, timeout=timeout
    )


def playbook(name: str, *extra: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    """Run ``playbooks/<name>`` against inventory/stack + inventory/vagrant, as an operator would by hand."""
    return subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(STACK), "-i", str(INVENTORY), str(ROOT / "playbooks" / name), *extra],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def machine_states() -> dict[str, str]:
    """Machine name -> Vagrant state (``running``, ``stopped``, ``not_created``...)."""
    out = vagrant("status", "--machine-readable", timeout=300).stdout
    return {
        fields[1]: fields[3]
        for fields in (line.split(",") for line in out.splitlines())
        if len(fields) >= 4 and fields[2] == "state"
    }


def inventory_machines() -> set[str]:
    """Every host of inventory/vagrant's ``vagrant`` group: the machines the Vagrantfile defines."""
    groups = yaml.safe_load((INVENTORY / "hosts.yml").read_text())["all"]["children"]["vagrant"]["children"]
    return {name for group in groups.values() for name in (group.get("hosts") or {})}


def _podman_list(*args: str) -> list[str]:
    return subprocess.run(["podman", *args], env=_env(), capture_output=True, text=True, check=True).stdout.split()


def leftover_containers() -> list[str]:
    """Names of the Vagrant machines' containers that still exist."""
    return _podman_list("ps", "-a", "--format", "{{.Names}}", "--filter", "name=celery-fleet-vagrant-")


def leftover_images() -> list[str]:
    """IDs of images built from vagrant/docker (label io.celery-fleet.image) that still exist."""
    return _podman_list("images", "-a", "-q", "--filter", "label=io.celery-fleet.image=vagrant-machine")


def _tail(run: subprocess.CompletedProcess) -> str:
    return (run.stdout + run.stderr)[-4000:]


@pytest.fixture(scope="module")
def machines():
    """The six machines, up and provisioned by one ``vagrant up``; destroyed afterwards."""
    prepared = playbook("lab/vagrant-docker.yml")
    assert prepared.returncode == 0, _tail(prepared)
    try:
        up = vagrant("up", "--provider=docker", timeout=3600)
        yield up
    finally:
        vagrant("destroy", "-f", timeout=600)
        # A machine whose creation failed is unknown to Vagrant, which cannot destroy it: remove
        # what is left by name and label (test_destroy_leaves_nothing_behind reports it first).
        for name in leftover_containers():
            subprocess.run(["podman", "rm", "-f", "-t", "10", name], env=_env(), capture_output=True)
        for image in leftover_images():
            subprocess.run(["podman", "rmi", "-f", image], env=_env(), capture_output=True)
        playbook("lab/vagrant-docker.yml", "-e", "vagrant_docker_state=absent")


def test_the_vagrantfile_validates(machines):
    run = vagrant("validate", timeout=300)
    assert run.returncode == 0, _tail(run)


def test_one_vagrant_up_brings_up_and_provisions_every_inventory_machine(machines):
    assert machines.returncode == 0, _tail(machines)
    assert "PLAY RECAP" in machines.stdout  # the Ansible provisioner ran site.yml
    assert machine_states() == dict.fromkeys(inventory_machines(), "running")


def test_the_routing_demo_passes_against_the_vagrant_machines(machines):
    run = playbook("demo-routing.yml", "-e", f"demo_report={DEMO_REPORT}")
    assert run.returncode == 0, _tail(run)
    assert "misrouted 0" in run.stdout


def test_halt_then_up_brings_the_stack_back(machines):
    halted = vagrant("halt", timeout=900)
    assert halted.returncode == 0, _tail(halted)
    assert set(machine_states().values()) == {"stopped"}
    up = vagrant("up", "--provider=docker", timeout=1800)
    assert up.returncode == 0, _tail(up)
    assert "Build image no longer exists" not in up.stdout  # each machine kept the image it runs
    assert set(machine_states().values()) == {"running"}
    run = playbook("demo-routing.yml", "-e", f"demo_report={DEMO_REPORT}")
    assert run.returncode == 0, _tail(run)
    assert "misrouted 0" in run.stdout


def test_destroy_leaves_nothing_behind(machines):
    run = vagrant("destroy", "-f", timeout=600)
    assert run.returncode == 0, _tail(run)
    assert set(machine_states().values()) == {"not_created"}
    assert leftover_containers() == []
    assert leftover_images() == []
