"""The inventory as the tools read it: inventory/stack first, then the environment."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def inventory_list(inventory: str) -> dict:
    """``ansible-inventory --list`` of inventory/stack then ``inventory``, as a dict.

    Args:
        inventory: The environment's inventory path, relative to the clone (e.g. inventory/lab).

    Returns:
        Groups (``{"brokers": {"hosts": [...]}, ...}``) and ``_meta.hostvars`` (host -> vars,
        not templated).

    Raises:
        subprocess.CalledProcessError: ansible-inventory failed.
    """
    out = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", "inventory/stack", "-i", inventory, "--list"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return json.loads(out)
