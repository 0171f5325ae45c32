"""testinfra wiring shared by every Molecule scenario's tests (``molecule/<scenario>/tests``).

Molecule's verifier passes its Ansible inventory; these hosts use Ansible's podman connection,
which testinfra can only drive through Ansible itself (~10x slower). When no ``--hosts`` is
given, every test runs instead against each host of the inventory (or those its module names in
``testinfra_hosts``) through testinfra's own podman backend (``podman exec``), with the
project's containers.conf (runc, ulimits).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml


def molecule_hosts(inventory_file: str | os.PathLike[str]) -> list[str]:
    """Names of every host in Molecule's generated inventory (``MOLECULE_INVENTORY_FILE``).

    Returns:
        Host names, sorted; each is also the podman container's name.

    Raises:
        OSError: the inventory file cannot be read.
    """
    data = yaml.safe_load(Path(inventory_file).read_text()) or {}
    names: set[str] = set()

    def walk(group: dict) -> None:
        names.update((group.get("hosts") or {}).keys())
        for child in (group.get("children") or {}).values():
            walk(child or {})

    walk(data.get("all") or {})
    return sorted(names)


#: The fleet_app role's venv and configuration file on a host (roles/fleet_app/vars/main.yml).
APP_VENV = "/opt/fleet/venv"
APP_CONFIG = "/etc/fleet/fleet.toml"


def assert_running_and_enabled(host, service: str) -> None:
    """Assert that the systemd ``service`` runs now and starts at boot.

    Raises:
        AssertionError: it does not run, or is not enabled.
    """
    unit = host.service(service)
    assert unit.is_running, f"{service} is not running"
    assert unit.is_enabled, f"{service} is not enabled at boot"


def private_address(host) -> str:
    """The host's address on its podman network: what the roles bind services to.

    Raises:
        AssertionError: ``hostname -I`` failed on the host (testinfra's check_output).
    """
    return host.check_output("hostname -I").split()[0]


def rabbitmqctl_json(host, *args: str) -> Any:
    """Run ``rabbitmqctl <args>`` on the host with JSON output and return it decoded.

    Raises:
        AssertionError: rabbitmqctl exited non-zero.
        json.JSONDecodeError: its output was not JSON.
    """
    return json.loads(host.check_output("rabbitmqctl --quiet --formatter json " + " ".join(args)))


def app_python(host, code: str) -> str:
    """Run Python ``code`` as the app's user in the app's venv with its configuration; return stdout.

    ``code`` must not contain double quotes (it is passed inside them to ``python -c``).

    Raises:
        AssertionError: the code exited non-zero.
    """
    return host.check_output(f'runuser -u fleet -- env FLEET_CONFIG={APP_CONFIG} {APP_VENV}/bin/python -c "{code}"')


#: ``podman://<host>`` of every host of the scenario, once pytest_configure has read them.
MOLECULE_HOSTS: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    """Read the scenario's hosts from Molecule's inventory (unless --hosts was given)."""
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE")
    if not inventory or getattr(config.option, "hosts", None):
        return
    MOLECULE_HOSTS[:] = [f"podman://{name}" for name in molecule_hosts(inventory)]
    project = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[1]))
    os.environ.setdefault("CONTAINERS_CONF", str(project / ".lab" / "containers.conf"))


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run a test module against every host of the scenario, unless it names its own hosts
    (``testinfra_hosts = ["podman://molecule-web"]``: in molecule/app, each role's tests run
    where that role is deployed). Runs before testinfra's hook, which reads that list."""
    if MOLECULE_HOSTS and not hasattr(metafunc.module, "testinfra_hosts"):
        metafunc.module.testinfra_hosts = list(MOLECULE_HOSTS)
