"""End-to-end: the celery_fleet.stack collection, built and installed outside the repository,
drives the deployed lab's workers by FQCN and finds nothing to change (check mode)."""

from __future__ import annotations

import subprocess

import pytest

from tests.collection import BIN, COLLECTION, install_collection

from .conftest import INVENTORY, RECAP, STACK

pytestmark = pytest.mark.e2e

PLAYBOOK = f"""
- name: The lab's workers, through the installed collection
  hosts: workers
  become: true
  tasks:
    - name: Learn the app's release, paths and environment
      ansible.builtin.include_role:
        name: {COLLECTION}.fleet_app
        tasks_from: outputs
    - name: The worker programs (and, through them, the collection's supervisor role)
      ansible.builtin.include_role:
        name: {COLLECTION}.celery_worker
"""


def test_the_collection_worker_role_finds_the_deployed_workers_unchanged(lab, tmp_path):
    env = install_collection(tmp_path)
    playbook = tmp_path / "workers.yml"
    playbook.write_text(PLAYBOOK)
    run = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(STACK), "-i", str(INVENTORY), "--check", str(playbook)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    recap = {m[0]: int(m[2]) for m in RECAP.findall(output)}
    assert set(recap) == set(lab.groups["workers"]), output[-2000:]
    assert recap == dict.fromkeys(lab.groups["workers"], 0), output[-4000:]
    assert f"{COLLECTION}.supervisor" in output
