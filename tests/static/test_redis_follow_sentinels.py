"""roles/redis's redis-follow-sentinels.sh: what a backend's Redis starts as, from what the
Sentinels answer. The template is rendered by Ansible (the role's own filters) and run with
/bin/sh against a stand-in ``redis-cli`` on PATH that answers for each Sentinel address as a case
says (no network: a Sentinel that "does not answer" prints nothing and fails, as a refused
connection does)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from .ansible_vars import ROOT, debug

TEMPLATE = ROOT / "roles" / "redis" / "templates" / "redis-follow-sentinels.sh.j2"

#: This backend's addresses (redis_bind_addresses) and the other backend's.
THIS, OTHER, THIRD = "10.89.0.21", "10.89.0.22", "10.89.0.23"
SENTINELS = ["10.89.0.11", "10.89.0.12", "10.89.0.13"]

# The stand-in redis-cli: prints $ANSWER_<address after -h, dots as _> as two lines (address, port), as
# `SENTINEL get-master-addr-by-name` does, or fails with nothing printed when it has none.
FAKE_CLI = """#!/bin/sh
while [ "$#" -gt 0 ]; do [ "$1" = -h ] && host=$2; shift; done
eval "answer=\\${ANSWER_$(printf '%s' "$host" | tr . _):-}"
[ -n "$answer" ] || exit 1
printf '%s\\r\\n%s\\r\\n' "${answer% *}" "${answer#* }"
"""


@pytest.fixture(scope="module")
def script(tmp_path_factory) -> tuple[Path, Path]:
    """``(script, env_file)``: the template rendered for a backend of 3 Sentinels, its env file
    and auth file moved into a temporary folder."""
    folder = tmp_path_factory.mktemp("follow")
    (folder / "redis-auth.conf").write_text("requirepass s3cret\n")
    variables = {
        "redis_sentinels": SENTINELS,
        "redis_sentinel_master_name": "fleet-results",
        "redis_port": 6379,
        "redis_bind_addresses": [THIS, "127.0.0.1"],
        "_redis_sentinel_cli": ["redis-cli", "-p", "26379", "--tls", "--cacert", "/etc/ca.crt"],
        "_redis_auth_file": str(folder / "redis-auth.conf"),
        "_redis_follow_env": str(folder / "follow-sentinels.env"),
        "_redis_follow_script": "/usr/local/lib/celery-fleet/redis-follow-sentinels.sh",
        "_redis_follow_dropin": "/etc/systemd/system/redis-server.service.d/follow.conf",
    }
    (folder / "vars.json").write_text(json.dumps(variables))
    # debug prints the rendered text (no module runs on the host: no interpreter needed).
    expression = f"lookup('ansible.builtin.template', '{TEMPLATE}')"
    rendered = debug(["localhost,"], "localhost", expression, "-e", f"@{folder / 'vars.json'}")
    (folder / "follow.sh").write_text(rendered["localhost"])
    cli = folder / "bin" / "redis-cli"
    cli.parent.mkdir()
    cli.write_text(FAKE_CLI)
    cli.chmod(cli.stat().st_mode | stat.S_IXUSR)
    return folder / "follow.sh", folder / "follow-sentinels.env"


def _start(script: tuple[Path, Path], answers: dict[str, str]) -> tuple[str, str]:
    """Runs the script with the Sentinels answering ``answers`` (``{sentinel: "address port"}``);
    returns ``(REDIS_FOLLOW line of the env file, what the script printed)``."""
    path, env_file = script
    env_file.unlink(missing_ok=True)
    env = dict(os.environ, PATH=f"{path.parent / 'bin'}:{os.environ['PATH']}")
    env.update({"ANSWER_" + sentinel.replace(".", "_"): answer for sentinel, answer in answers.items()})
    proc = subprocess.run(["/bin/sh", str(path)], env=env, capture_output=True, text=True, timeout=60, check=True)
    return env_file.read_text().strip(), proc.stdout


def test_a_majority_naming_another_host_makes_a_replica_of_it(script):
    # Two of three name the other backend; the third does not answer.
    line, said = _start(script, {SENTINELS[0]: f"{OTHER} 6379", SENTINELS[1]: f"{OTHER} 6379"})
    assert line == f'REDIS_FOLLOW="--replicaof {OTHER} 6379"', said


def test_a_majority_naming_this_host_starts_a_master(script):
    answers = {SENTINELS[0]: f"{THIS} 6379", SENTINELS[1]: f"{THIS} 6379", SENTINELS[2]: f"{OTHER} 6379"}
    line, said = _start(script, answers)
    assert line == 'REDIS_FOLLOW="--replicaof no one"', said


@pytest.mark.parametrize(
    "answers",
    [
        {},  # no Sentinel answers (every host powered off at once)
        {SENTINELS[0]: f"{OTHER} 6379"},  # one of three: no majority
        {SENTINELS[0]: f"{OTHER} 6379", SENTINELS[1]: f"{THIS} 6379", SENTINELS[2]: f"{THIRD} 6379"},
    ],
    ids=["none-answers", "one-of-three", "split"],
)
def test_without_a_majority_the_role_files_decide(script, answers):
    line, said = _start(script, answers)
    assert line == "REDIS_FOLLOW=", said
    assert "no majority" in said
