"""The roles as the celery_fleet.stack collection: it builds, installs, and its roles run by FQCN
from a playbook outside the repository (on the controller; nothing is contacted). The end-to-end
tests run the collection's worker role against the deployed lab too (tests/e2e/test_collection.py).
"""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from tests.collection import BIN, COLLECTION, ROOT, install_collection

PLAYBOOK = f"""
- name: Use the collection's roles by their FQCN
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Read fleet_app's outputs, read-only (stats two files, sets facts)
      ansible.builtin.include_role:
        name: {COLLECTION}.fleet_app
        tasks_from: outputs
    - name: Show them
      ansible.builtin.debug:
        msg: "OUTPUTS {{{{ [fleet_app_python, fleet_app_config_file, fleet_app_environment.FLEET_CONFIG] | to_json }}}}"
"""

BAD_BINDING = f"""
- name: A bad variable is refused by the collection's role before anything changes
  hosts: localhost
  connection: local
  gather_facts: false
  roles:
    - role: {COLLECTION}.celery_worker
      celery_worker_bindings: [{{name: x, queues: [default], pool: fibers}}]
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    workdir = tmp_path_factory.mktemp("collection")
    return workdir, install_collection(workdir)


def run(workdir: Path, env: dict[str, str], text: str) -> subprocess.CompletedProcess:
    playbook = workdir / "play.yml"
    playbook.write_text(text)
    return subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "localhost,", "-e", f"ansible_python_interpreter={BIN / 'python'}",
         str(playbook)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
    )  # fmt: skip


def test_the_artifact_holds_the_stack_roles_only(installed):
    workdir, _ = installed
    (artifact,) = workdir.glob("celery_fleet-stack-*.tar.gz")
    with tarfile.open(artifact) as tar:
        names = tar.getnames()
    roles = {name.split("/")[1] for name in names if name.startswith("roles/") and name.count("/") >= 2}
    expected = {p.name for p in (ROOT / "roles").iterdir() if p.is_dir()} - {"lab"}
    assert roles == expected
    assert not [n for n in names if n.split("/")[0] in {"app", "tests", "molecule", "inventory", "playbooks"}]
    version = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
    assert artifact.name == f"celery_fleet-stack-{version}.tar.gz"


def test_a_role_runs_by_fqcn_from_outside_the_repository(installed):
    workdir, env = installed
    assert not workdir.is_relative_to(ROOT)
    result = run(workdir, env, PLAYBOOK)
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(line for line in result.stdout.splitlines() if "OUTPUTS" in line)
    assert "/venv/bin/python" in line and "fleet.toml" in line, line


def test_the_collection_role_refuses_a_bad_variable(installed):
    workdir, env = installed
    result = run(workdir, env, BAD_BINDING)
    assert result.returncode != 0
    assert "fibers" in result.stdout + result.stderr
