"""Build the roles into the celery_fleet.stack collection and install it outside the repository."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
#: The collection's FQCN prefix (galaxy.yml: namespace.name).
COLLECTION = "celery_fleet.stack"


def install_collection(workdir: Path) -> dict[str, str]:
    """Build the collection from the repository into ``workdir``, install the artifact into
    ``workdir/collections``, and return the environment for running ansible-playbook in
    ``workdir`` against it: an ansible.cfg there that names that collections path and no roles
    path, so nothing of the repository's roles/ can be used by accident.

    Raises:
        subprocess.CalledProcessError: the build or the install failed.
    """
    subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(workdir), "--force", str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
    )
    (artifact,) = workdir.glob("celery_fleet-stack-*.tar.gz")
    collections = workdir / "collections"
    # --force and cwd: ansible-lint installs this collection into ~/.ansible/collections, where
    # ansible-galaxy would otherwise find it "already installed".
    install = ["collection", "install", "--offline", "--force", "-p", str(collections), str(artifact)]
    subprocess.run(
        [str(BIN / "ansible-galaxy"), *install],
        cwd=workdir,
        check=True,
        capture_output=True,
        text=True,
    )
    config = workdir / "ansible.cfg"
    # The bundled collections the roles depend on (community.general...) stay where the ansible
    # package put them, after the installed artifact.
    bundled = next(Path(p) for p in sys.path if (Path(p) / "ansible_collections" / "community").is_dir())
    config.write_text(
        "[defaults]\n"
        f"collections_path = {collections}:{bundled}\n"
        f"roles_path = {workdir / 'no-roles'}\n"
        "interpreter_python = auto_silent\n"
        "[ssh_connection]\npipelining = True\n"
    )
    return dict(os.environ, ANSIBLE_CONFIG=str(config), ANSIBLE_FORCE_COLOR="0", PATH=f"{BIN}:{os.environ['PATH']}")
