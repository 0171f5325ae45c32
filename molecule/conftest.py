"""testinfra wiring shared by every Molecule scenario's tests (``molecule/<scenario>/tests``).

Molecule's verifier passes its Ansible inventory; these hosts use Ansible's podman connection,
which testinfra can only drive through Ansible itself (~10x slower). When no ``--hosts`` is
given, every test runs instead against each host of the inventory through testinfra's own
podman backend (``podman exec``), with the project's containers.conf (runc, ulimits).
"""

from __future__ import annotations

import os
from pathlib import Path

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


def pytest_configure(config: pytest.Config) -> None:
    """Point testinfra at ``podman://<host>`` for each Molecule host (unless --hosts was given)."""
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE")
    if not inventory or getattr(config.option, "hosts", None):
        return
    config.option.hosts = ",".join(f"podman://{name}" for name in molecule_hosts(inventory))
    project = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[1]))
    os.environ.setdefault("CONTAINERS_CONF", str(project / ".lab" / "containers.conf"))
