"""Resolve inventory variables the way a play sees them, on the controller only."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
STACK = ROOT / "inventory" / "stack"


def debug(inventories: list[str], pattern: str, expression: str, *extra: str, playbook_dir: str | None = None) -> dict:
    """``{host: value}`` of a Jinja ``expression`` for the hosts matching ``pattern``, rendered by
    ``ansible -m ansible.builtin.debug`` on the controller (connection local: no host is reached)
    with the inventory sources ``inventories`` in order (paths, or a host list such as
    ``"localhost,"``). ``playbook_dir`` (relative to the project) loads the group_vars beside the
    playbooks there; ``extra`` goes to ``ansible`` as is (e.g. ``-e @vars.json``,
    ``--vault-password-file``).

    Raises:
        subprocess.CalledProcessError: ansible failed (for example, an unparsable inventory or an
            undefined variable); its ``stdout`` and ``stderr`` say why, and their ends are a
            note on it.
    """
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_DEPRECATION_WARNINGS="0",
    )
    argv = [str(BIN / "ansible"), pattern]
    for source in inventories:
        argv += ["-i", source]
    if playbook_dir is not None:
        argv += ["--playbook-dir", str(ROOT / playbook_dir)]
    argv += ["-c", "local", "-m", "ansible.builtin.debug", "-a", json.dumps({"msg": f"{{{{ {expression} }}}}"}), *extra]
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        error = subprocess.CalledProcessError(proc.returncode, argv, proc.stdout, proc.stderr)
        # pytest prints an exception's notes, not its stdout and stderr.
        error.add_note(f"stdout (its end): {proc.stdout[-3000:]}\nstderr (its end): {proc.stderr[-1000:]}")
        raise error
    # ansible.cfg's profile_tasks callback prints its timings around the JSON document.
    document, _ = json.JSONDecoder().raw_decode(proc.stdout[proc.stdout.index("\n{") + 1 :])
    hosts = document["plays"][0]["tasks"][0]["hosts"]
    return {host: result["msg"] for host, result in hosts.items()}


def resolve(
    inventory: Path, pattern: str, expression: str, playbook_dir: str = "playbooks/deploy", *extra: str
) -> dict:
    """``{host: value}`` of a Jinja ``expression`` for the hosts matching ``pattern``, resolved
    with inventory/stack listed first and ``inventory`` after it, as site.yml sees them
    (:func:`debug`, whose ``playbook_dir`` and ``extra`` these are).

    Raises:
        subprocess.CalledProcessError: ansible failed (for example, an unparsable inventory).
    """
    return debug([str(STACK), str(inventory)], pattern, expression, *extra, playbook_dir=playbook_dir)


def generated_secrets() -> dict[str, str]:
    """``{variable: file}`` of every secret the stack's wiring generates on first use into
    ``fleet_secrets_dir`` (``lookup('ansible.builtin.password', ...)`` in
    inventory/stack/group_vars/all.yml), e.g. ``{"fleet_redis_password": "redis"}``."""
    text = (STACK / "group_vars" / "all.yml").read_text()
    pattern = r"^(fleet_\w+): \"\{\{ lookup\('ansible.builtin.password', fleet_secrets_dir ~ '/(\w+)'"
    return dict(re.findall(pattern, text, re.M))
