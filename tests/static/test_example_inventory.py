"""inventory/example, the production-shaped environment, stays usable: it parses, site.yml passes
a check-mode syntax run through it, and every secret reaches the hosts from an ansible-vault file.

The vault is written from ``vault.yml.example`` with random values and encrypted with a throw-away
password, in a copy of the folder (links resolved), as an operator would. Nothing is contacted.
The lab is deployed through the same wiring by the end-to-end tests (inventory/lab-example).
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.static.ansible_vars import BIN, ROOT, STACK, generated_secrets, resolve

EXAMPLE = ROOT / "inventory" / "example"


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> tuple[Path, Path, dict[str, str]]:
    """(the copied environment, its vault password file, the vault's plain values)."""
    base = tmp_path_factory.mktemp("example")
    env = base / "inventory" / "example"
    shutil.copytree(EXAMPLE, env, symlinks=False)
    template = yaml.safe_load((env / "group_vars" / "all" / "vault.yml.example").read_text())
    values = {
        name: "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(40))
        if name.endswith("cookie")
        else secrets.token_urlsafe(24)
        for name in template
    }
    vault = env / "group_vars" / "all" / "vault.yml"
    vault.write_text(yaml.safe_dump(values))
    password = base / "vault-pass"
    password.write_text(secrets.token_hex(16))
    password.chmod(0o600)
    subprocess.run(
        [str(BIN / "ansible-vault"), "encrypt", "--vault-password-file", str(password), str(vault)],
        check=True,
        capture_output=True,
    )
    return env, password, values


def test_the_vault_is_encrypted(example):
    env, _, values = example
    text = (env / "group_vars" / "all" / "vault.yml").read_text()
    assert text.startswith("$ANSIBLE_VAULT;")
    assert not any(value in text for value in values.values())


def test_inventory_graph_lists_every_host_by_dns_name(example):
    env, password, _ = example
    out = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(STACK), "-i", str(env), "--graph", "--vault-password-file",
         str(password)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    for group in ("brokers", "backends", "producers", "workers"):
        assert f"@{group}:" in out
    for host in ("broker1", "broker2", "broker3", "web1", "worker1", "worker2"):
        assert f"{host}.fleet.example.internal" in out


def test_site_yml_passes_a_check_mode_syntax_run(example):
    env, password, _ = example
    run = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(STACK), "-i", str(env), "--vault-password-file", str(password),
         "--syntax-check", "--check", str(ROOT / "playbooks" / "site.yml")],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_secret_comes_from_the_vault(example):
    env, password, values = example
    assert {f"vault_{name}" for name in generated_secrets()} == set(values), "vault.yml.example lacks a secret"
    for name, value in values.items():
        plain = name.removeprefix("vault_")
        seen = resolve(env, "all", plain, "playbooks/deploy", "--vault-password-file", str(password))
        assert set(seen.values()) == {value}, plain
    assert not (env / ".secrets").exists(), "a secret was generated instead of read from the vault"


def test_host_key_checking_is_on(example):
    env, password, _ = example
    seen = resolve(env, "brokers", "lookup('ansible.builtin.config', 'HOST_KEY_CHECKING')", "playbooks/deploy",
                   "--vault-password-file", str(password))  # fmt: skip
    assert set(seen.values()) == {True}
    args = resolve(env, "all", "ansible_ssh_common_args | default('')", "playbooks/deploy", "--vault-password-file",
                   str(password))  # fmt: skip
    assert not any("StrictHostKeyChecking=no" in a for a in args.values()), args
