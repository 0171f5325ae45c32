"""Measure deploy wall time on the lab: a first deploy on bare hosts, then the idempotent re-run.

Usage: python tools/bench_deploy.py [--runs N] [--inventory inventory/lab]

For each run: tear the lab down, bring bare hosts up (lab/up.yml, not timed), time site.yml twice.
Prints one line per run and the medians, in seconds. The lab is torn down at the end.
Figures are written down in docs/benchmarks.md; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def playbook(inventory: str, name: str) -> float:
    """Run one playbook; return its wall time in seconds.

    Raises:
        subprocess.CalledProcessError: the playbook failed.
    """
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), PATH=f"{BIN}:{os.environ['PATH']}")
    started = time.monotonic()
    subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "inventory/stack", "-i", inventory, f"playbooks/{name}"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.monotonic() - started


def main() -> int:
    """Run the benchmark; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--inventory", default="inventory/lab")
    args = parser.parse_args()
    first, rerun = [], []
    try:
        for i in range(args.runs):
            playbook(args.inventory, "lab/destroy.yml")
            playbook(args.inventory, "lab/up.yml")
            first.append(playbook(args.inventory, "site.yml"))
            rerun.append(playbook(args.inventory, "site.yml"))
            print(f"run {i + 1}: first deploy {first[-1]:.0f} s, idempotent re-run {rerun[-1]:.0f} s", flush=True)
    finally:
        playbook(args.inventory, "lab/destroy.yml")
    median_first, median_rerun = statistics.median(first), statistics.median(rerun)
    print(f"median of {args.runs}: first deploy {median_first:.0f} s, re-run {median_rerun:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
