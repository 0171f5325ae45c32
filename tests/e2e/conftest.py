"""Session fixtures of the end-to-end tests: one lab per session, shared by every test.

The lab is brought up and the stack deployed once (``lab/up.yml`` + ``site.yml``); every test then
asserts from the outside, over SSH (testinfra) or the network. Whatever happens, the lab is torn
down at the end (``lab/destroy.yml``), unless ``FLEET_E2E_KEEP_LAB=1`` keeps it for debugging.
``FLEET_E2E_REUSE=1`` skips the initial teardown, to reuse a lab that is already up.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import testinfra
import yaml
from fleet.demo import TOKEN_ENV

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "inventory" / "stack"
INVENTORY = ROOT / "inventory" / "lab"
RESULTS = ROOT / "results"
BIN = Path(sys.executable).parent
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the tests marked ``after_all`` after every other test of the session, in the order
    they are defined: they re-deploy the stack and must find nothing to change, whatever ran
    before them (drills, bad-variable runs). Order is stated by the marker, never by file names."""
    last = [item for item in items if item.get_closest_marker("after_all")]
    items[:] = [item for item in items if not item.get_closest_marker("after_all")] + last


@dataclass
class PlaybookRun:
    """One ansible-playbook run: exit code, wall seconds, output, and per-host recap counts."""

    returncode: int
    seconds: float
    output: str

    @property
    def recap(self) -> dict[str, dict[str, int]]:
        """``{host: {"ok", "changed", "unreachable", "failed"}}`` from the PLAY RECAP."""
        return {
            m[0]: {"ok": int(m[1]), "changed": int(m[2]), "unreachable": int(m[3]), "failed": int(m[4])}
            for m in RECAP.findall(self.output)
        }


def run_playbook(playbook: str, *extra: str, timeout: float = 1800, inventory: Path = INVENTORY) -> PlaybookRun:
    """Run ``playbooks/<playbook>`` against inventory/stack + ``inventory`` (the lab's, unless told)
    and capture everything.

    Raises:
        subprocess.TimeoutExpired: it ran longer than ``timeout`` seconds.
    """
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
    started = time.monotonic()
    proc = subprocess.run(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            str(STACK),
            "-i",
            str(inventory),
            str(ROOT / "playbooks" / playbook),
            *extra,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    run = PlaybookRun(proc.returncode, time.monotonic() - started, proc.stdout + proc.stderr)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{Path(playbook).stem}.log").write_text(run.output)
    return run


def run_drill(name: str) -> tuple[PlaybookRun, dict]:
    """Run ``playbooks/drills/<name>.yml`` and check what every drill must show: the playbook
    exited 0, no confirmed task was lost, every publish was confirmed and every task completed.

    Returns:
        The playbook run and the drill's report (``results/drill-<name>.json``, as written by
        fleet.drill).

    Raises:
        AssertionError: one of those did not hold.
    """
    run = run_playbook(f"drills/{name}.yml")
    assert run.returncode == 0, run.output[-6000:]
    report = json.loads((RESULTS / f"drill-{name}.json").read_text())
    print(json.dumps({k: v for k, v in report.items() if k not in ("lost", "duplicated")}, indent=1))
    assert report["lost"] == [], f"lost: {report['lost'][:20]}"
    assert report["publish_errors"] == 0, report["errors"]
    assert report["completed"] == report["sent"]
    return run, report


@dataclass
class Lab:
    """The running lab: inventory, addresses, and the first two site.yml runs."""

    hosts: dict[str, str]
    groups: dict[str, list[str]]
    ssh_config: Path
    first_deploy: PlaybookRun
    second_deploy: PlaybookRun | None = None
    #: The producer API's floating address (inventory/lab: fleet_api_virtual_address).
    api_address: str = ""

    def host(self, name: str):
        """A testinfra host reached over SSH with the lab's ssh_config."""
        return testinfra.get_host(f"ssh://{name}", ssh_config=str(self.ssh_config))

    def app_python(self, name: str, args: str) -> str:
        """Run ``python <args>`` as the app user in the app's venv on host ``name``; return stdout.

        The venv and configuration are the fleet_app role's (/opt/fleet/venv, /etc/fleet).

        Raises:
            AssertionError: the command exited non-zero (testinfra's check_output).
        """
        return self.host(name).check_output(
            f"runuser -u fleet -- env FLEET_CONFIG=/etc/fleet/fleet.toml /opt/fleet/venv/bin/python {args}"
        )

    #: The lab's CA certificate on the controller (roles/pki, inventory/lab: fleet_pki_dir).
    ca_file: Path = INVENTORY / ".secrets" / "pki" / "ca.crt"

    def url(self, group: str, port: int, path: str = "") -> str:
        """``https://<first host of group>:<port><path>``: every HTTP service of the lab is HTTPS."""
        return f"https://{self.hosts[self.groups[group][0]]}:{port}{path}"

    def secret(self, name: str) -> str:
        """A first-run secret from the lab inventory's secrets folder."""
        return (INVENTORY / ".secrets" / name).read_text().split()[0]

    def host_vars(self, name: str) -> dict:
        """The inventory host_vars file of one host."""
        return yaml.safe_load((INVENTORY / "host_vars" / f"{name}.yml").read_text())

    def worker_bindings(self, worker: str) -> list[dict]:
        """The ``celery_worker_bindings`` of one worker host, from inventory host_vars."""
        return self.host_vars(worker)["celery_worker_bindings"]

    def bindings(self) -> dict[str, list[str]]:
        """Host -> queues its worker programs consume, from inventory host_vars."""
        return {
            name: sorted({q for b in self.worker_bindings(name) for q in b["queues"]})
            for name in self.groups["workers"]
        }


def _inventory() -> tuple[dict[str, str], dict[str, list[str]], str]:
    out = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(STACK), "-i", str(INVENTORY), "--list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    data = json.loads(out)
    hosts = {h: v["ansible_host"] for h, v in data["_meta"]["hostvars"].items()}
    groups = {g: data[g]["hosts"] for g in ("brokers", "producers", "backends", "workers")}
    api_address = data["_meta"]["hostvars"][groups["producers"][0]].get("fleet_api_virtual_address", "")
    return hosts, groups, api_address


@pytest.fixture(scope="session")
def lab():
    """Bring the lab up, deploy site.yml once, yield a :class:`Lab`, always tear it down."""
    missing = [tool for tool in ("podman", "runc", "mmdebstrap") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"the lab needs {', '.join(missing)} (make setup installs them)")
    keep = os.environ.get("FLEET_E2E_KEEP_LAB") == "1"
    if os.environ.get("FLEET_E2E_REUSE") != "1":
        run_playbook("lab/destroy.yml")
    try:
        up = run_playbook("lab/up.yml")
        assert up.returncode == 0, f"lab/up.yml failed:\n{up.output[-4000:]}"
        deploy = run_playbook("site.yml")
        assert deploy.returncode == 0, f"site.yml failed:\n{deploy.output[-6000:]}"
        hosts, groups, api_address = _inventory()
        lab = Lab(
            hosts=hosts,
            groups=groups,
            ssh_config=ROOT / ".lab" / "ssh_config",
            first_deploy=deploy,
            api_address=api_address,
        )
        # The tests call the API as its `operator` client (fleet.demo.api_call reads the token).
        # Every HTTPS call of this process (urllib's default context) trusts the lab's CA.
        with pytest.MonkeyPatch.context() as env:
            env.setenv(TOKEN_ENV, lab.secret("api_token_operator"))
            env.setenv("SSL_CERT_FILE", str(lab.ca_file))
            yield lab
    finally:
        if not keep:
            down = run_playbook("lab/destroy.yml")
            if down.returncode != 0:
                print(f"lab/destroy.yml failed:\n{down.output[-2000:]}", file=sys.stderr)
