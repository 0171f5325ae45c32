"""The stack's wiring is an inventory layer (inventory/stack) that every environment overrides.

Ansible ranks a playbook's group_vars above an inventory's, so wiring kept beside the playbooks
would silently win over an environment's ``group_vars/brokers.yml``. These tests resolve the
variables the way a play does (``ansible`` ad hoc with ``--playbook-dir``, so playbook-adjacent
group_vars would load too) and assert that the environment wins at every level: group_vars/all,
group_vars/<group>, host_vars. No host is contacted: ``debug`` runs on the controller.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.static.ansible_vars import ROOT, STACK, resolve


@pytest.fixture
def environment(tmp_path: Path) -> Path:
    """An environment shaped like the lab (its hosts.yml and host_vars), with overrides at
    every level: group_vars/all.yml, group_vars/brokers.yml, host_vars/broker2.yml."""
    env = tmp_path / "inventory" / "override"
    shutil.copytree(ROOT / "inventory" / "lab", env, ignore=shutil.ignore_patterns(".secrets"))
    (env / "group_vars" / "all.yml").write_text("fleet_api_port: 9000\n")
    (env / "group_vars" / "brokers.yml").write_text("rabbitmq_net_ticktime: 42\n")
    (env / "host_vars" / "broker2.yml").write_text("rabbitmq_net_ticktime: 7\n")
    return env


def test_the_stack_wiring_reaches_every_environment_unchanged():
    stack_brokers = yaml.safe_load((STACK / "group_vars" / "brokers.yml").read_text())
    for name in ("lab", "vagrant"):
        ticktime = resolve(ROOT / "inventory" / name, "brokers", "rabbitmq_net_ticktime")
        assert ticktime == dict.fromkeys(["broker1", "broker2", "broker3"], stack_brokers["rabbitmq_net_ticktime"])
        assert resolve(ROOT / "inventory" / name, "localhost", "fleet_stack_wiring") == {"localhost": True}


@pytest.mark.parametrize("playbook_dir", ["playbooks", "playbooks/deploy", "playbooks/drills"])
def test_an_environment_overrides_the_stack_at_every_level(environment, playbook_dir):
    ticktime = resolve(environment, "brokers", "rabbitmq_net_ticktime", playbook_dir)
    assert ticktime == {"broker1": 42, "broker2": 7, "broker3": 42}
    ports = resolve(environment, "all", "fleet_api_port", playbook_dir)
    assert set(ports.values()) == {9000}, ports


def test_no_wiring_beside_the_playbooks():
    """A group_vars folder beside a deploy playbook would outrank every environment again."""
    beside = [p.relative_to(ROOT) for p in (ROOT / "playbooks").rglob("group_vars")]
    # The drills' defaults (playbooks/drills/group_vars/all.yml) name drill_* variables only.
    assert beside == [Path("playbooks/drills/group_vars")]
    for path in beside[0].glob("*.yml"):
        names = yaml.safe_load(path.read_text())
        assert all(name.startswith("drill_") for name in names), path
