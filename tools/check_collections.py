"""Exit 0 when every collection pinned in requirements.yml is installed at that version.

Usage: python tools/check_collections.py requirements.yml

Galaxy is unreachable from many machines this kit runs on; the `ansible` package on PyPI bundles
the same collections. This check lets `make collections` skip Galaxy when they are present.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml


def installed_collections() -> dict[str, str]:
    """Return ``{name: version}`` of the collections ansible-galaxy sees (first found wins).

    Raises:
        subprocess.CalledProcessError: ansible-galaxy failed.
    """
    out = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-galaxy"), "collection", "list", "--format", "json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found: dict[str, str] = {}
    for path_entries in json.loads(out).values():
        for name, meta in path_entries.items():
            found.setdefault(name, meta.get("version", ""))
    return found


def main(argv: list[str]) -> int:
    """Compare requirements.yml with what is installed; print what is missing; return 0 or 1."""
    wanted = yaml.safe_load(open(argv[1], encoding="utf-8"))["collections"]
    have = installed_collections()
    missing = [f"{c['name']}=={c['version']}" for c in wanted if have.get(c["name"]) != c["version"]]
    for item in missing:
        print(f"missing collection: {item} (installed: {have.get(item.split('==')[0], 'none')})")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
