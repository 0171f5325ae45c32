"""vagrant/bin/docker, the `docker` that Vagrant's docker provider runs, against a stand-in podman.

The stand-in prints what podman 4.3 prints for each case (recorded on the lab machine) and exits
as podman does, so these tests check the shim's own translation, not podman; tests/vagrant runs
the shim under Vagrant with the real podman.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHIM = ROOT / "vagrant" / "bin" / "docker"

# argv (joined by spaces) -> (stdout, stderr, exit status) of the stand-in podman.
PODMAN_ANSWERS = {
    "images -q": ("1d4f9b132a14\nc2b14120ae78\n", "", 0),
    "rmi 8d621aa0": ("", "Error: 8d621aa0: image not known\n", 125),
    "rmi 1d4f9b13": ("", "Error: image used by 3f0c: image is in use by a container\n", 2),
    "rmi c2b14120": ("Deleted: c2b14120ae78\n", "", 0),
    "rmi 0bad0bad": ("", "Error: some other failure\n", 125),
    "network connect celery-fleet-vagrant web1": (
        "",
        'Error: "celery-fleet-vagrant" is already connected to container "web1"\n',
        125,
    ),
    "network connect missing web1": ("", "Error: unable to find network with name or ID missing\n", 125),
    "network inspect celery-fleet-vagrant": (
        json.dumps(
            [{"name": "celery-fleet-vagrant", "subnets": [{"subnet": "10.213.43.0/24", "gateway": "10.213.43.1"}]}]
        ),
        "",
        0,
    ),
    "ps -a -q --no-trunc --filter network=celery-fleet-vagrant": ("aaaa\nbbbb\n", "", 0),
}


@pytest.fixture
def podman_on_path(tmp_path: Path) -> dict[str, str]:
    """PATH with a stand-in ``podman`` answering ``PODMAN_ANSWERS``; anything else exits 99."""
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps(PODMAN_ANSWERS))
    fake = tmp_path / "podman"
    fake.write_text(
        "#!/usr/bin/env python3\n"
        "import json, sys\n"
        f"answers = json.load(open({str(answers)!r}))\n"
        "out, err, status = answers.get(' '.join(sys.argv[1:]), ('', 'unexpected podman call', 99))\n"
        "sys.stdout.write(out); sys.stderr.write(err); sys.exit(status)\n"
    )
    fake.chmod(0o755)
    return dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}", CONTAINERS_CONF="/dev/null")


def docker(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SHIM), *args], env=env, capture_output=True, text=True, timeout=30)


def test_images_are_listed_by_the_8_hex_digits_vagrant_keeps(podman_on_path):
    run = docker(podman_on_path, "images", "-q")
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["1d4f9b13", "c2b14120"]


def test_an_image_already_removed_reads_as_dockers_no_such_image(podman_on_path):
    run = docker(podman_on_path, "rmi", "8d621aa0")
    assert run.returncode == 1
    assert "No such image" in run.stderr  # Vagrant's driver ignores exactly this


def test_an_image_in_use_reads_as_dockers_being_used(podman_on_path):
    run = docker(podman_on_path, "rmi", "1d4f9b13")
    assert run.returncode == 1
    assert "is being used" in run.stderr  # Vagrant's driver keeps the image, as with Docker


def test_a_removed_image_and_other_rmi_failures_pass_through(podman_on_path):
    assert docker(podman_on_path, "rmi", "c2b14120").returncode == 0
    failed = docker(podman_on_path, "rmi", "0bad0bad")
    assert failed.returncode == 1
    assert failed.stderr.strip() == "Error: some other failure"


def test_connecting_an_already_connected_network_succeeds_and_other_failures_do_not(podman_on_path):
    assert docker(podman_on_path, "network", "connect", "celery-fleet-vagrant", "web1").returncode == 0
    failed = docker(podman_on_path, "network", "connect", "missing", "web1")
    assert failed.returncode == 1
    assert "unable to find network" in failed.stderr


def test_network_inspect_gains_dockers_name_ipam_and_containers(podman_on_path):
    run = docker(podman_on_path, "network", "inspect", "celery-fleet-vagrant")
    assert run.returncode == 0, run.stderr
    (network,) = json.loads(run.stdout)
    assert network["Name"] == "celery-fleet-vagrant"
    assert network["IPAM"]["Config"] == [{"Subnet": "10.213.43.0/24", "Gateway": "10.213.43.1"}]
    assert set(network["Containers"]) == {"aaaa", "bbbb"}
