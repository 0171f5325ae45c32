"""Run failover drills several times on a deployed stack and print their figures as one table.

Usage: python tools/bench_drills.py [--runs 3] [--label mnesia] [--inventory inventory/lab]
                                    [-e key=value ...] [drill ...]
       (default drills: broker-kill broker-freeze broker-partition)

Each run is ``ansible-playbook playbooks/drills/<drill>.yml`` (the drill restores what it broke);
its report ``results/drill-<drill>.json`` is copied to ``results/bench-drills/<label>/<drill>-<n>.json``
(with the freeze drill's ``-partitions.json`` beside it). A failed drill stops the benchmark with
its exit code. Prints one row per run (sent, lost, duplicated, redelivered, first completion after
the fault and longest gap in seconds, for broker-freeze whether the thawed node came back
partitioned and had to be restarted, for host-freeze-heal the seconds from thaw to a whole
cluster) and the medians per drill. Nothing here asserts a time:
the figures go into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RESULTS = ROOT / "results"
DEFAULT_DRILLS = ("broker-kill", "broker-freeze", "broker-partition")


def run_drill(inventory: str, drill: str, extra_vars: list[str] | None = None) -> None:
    """Run one drill playbook against ``inventory`` (after inventory/stack), with each of
    ``extra_vars`` (``key=value`` strings) passed as ``-e``.

    Raises:
        subprocess.CalledProcessError: the drill failed (lost tasks, an unhealed cluster...).
    """
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), PATH=f"{BIN}:{os.environ['PATH']}")
    log = RESULTS / f"{drill}.log"
    with log.open("w") as out:
        subprocess.run(
            [str(BIN / "ansible-playbook"), "-i", "inventory/stack", "-i", inventory, f"playbooks/drills/{drill}.yml"]
            + [arg for extra in extra_vars or [] for arg in ("-e", extra)],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def keep_report(drill: str, folder: Path, run: int) -> dict:
    """Copy the drill's reports into ``folder`` as ``<drill>-<run>.json``; return the main report
    (a dict as written by fleet.drill), with ``partitioned_after_thaw`` (bool) added for
    broker-freeze and ``seconds_to_heal`` (seconds from thaw to a whole cluster) for
    host-freeze-heal."""
    folder.mkdir(parents=True, exist_ok=True)
    report = json.loads((RESULTS / f"drill-{drill}.json").read_text())
    shutil.copy(RESULTS / f"drill-{drill}.json", folder / f"{drill}-{run}.json")
    partitions = RESULTS / f"drill-{drill}-partitions.json"
    if partitions.is_file():
        shutil.copy(partitions, folder / f"{drill}-{run}-partitions.json")
        seen = json.loads(partitions.read_text())
        report["partitioned_after_thaw"] = bool(seen.get("partitions_after_thaw")) or bool(seen.get("restarted"))
    heal = RESULTS / f"drill-{drill}-heal.json"
    if heal.is_file():
        shutil.copy(heal, folder / f"{drill}-{run}-heal.json")
        report["seconds_to_heal"] = float(json.loads(heal.read_text())["seconds_to_heal"])
    return report


def seconds(value: float | None) -> str:
    """A figure in seconds with two decimals, or ``-`` where the drill has none (supervisorctl)."""
    return "-" if value is None else f"{value:.2f}"


def row(drill: str, run: int, report: dict) -> str:
    """One Markdown table row of a drill report."""
    thaw = report.get("partitioned_after_thaw")
    return (
        f"| {drill} | {run} | {report['sent']} | {len(report['lost'])} | {report['publish_errors']} | "
        f"{len(report['duplicated'])} | {report['redelivered']} | "
        f"{seconds(report.get('first_completion_after_fault'))} | "
        f"{seconds(report.get('longest_gap'))} | {'-' if thaw is None else ('yes' if thaw else 'no')} | "
        f"{seconds(report.get('seconds_to_heal'))} |"
    )


def median(values: list[float | None]) -> float | None:
    """Median of the figures a drill has (None where it has none)."""
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def main() -> int:
    """Run the benchmark; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("drills", nargs="*", default=list(DEFAULT_DRILLS))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--label", default="run", help="folder name under results/bench-drills/")
    parser.add_argument("--inventory", default="inventory/lab")
    parser.add_argument(
        "-e",
        "--extra-vars",
        action="append",
        default=[],
        help="key=value for every drill run (e.g. drill_replace_host=broker2)",
    )
    args = parser.parse_args()
    folder = RESULTS / "bench-drills" / args.label
    print(f"{args.label}: {args.runs} runs of {', '.join(args.drills)}")
    print(
        "| drill | run | sent | lost | publish errors | duplicated | redelivered | first (s) | gap (s) "
        "| split after thaw | healed after (s) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |", flush=True)
    reports: dict[str, list[dict]] = {drill: [] for drill in args.drills}
    for run in range(1, args.runs + 1):
        for drill in args.drills:
            try:
                run_drill(args.inventory, drill, args.extra_vars)
            except subprocess.CalledProcessError as exc:
                print(f"{drill} run {run} failed (exit {exc.returncode}): see results/{drill}.log")
                return exc.returncode
            report = keep_report(drill, folder, run)
            reports[drill].append(report)
            print(row(drill, run, report), flush=True)
    for drill, runs in reports.items():
        first = median([r.get("first_completion_after_fault") for r in runs])
        gap = median([r.get("longest_gap") for r in runs])
        lost = sum(len(r["lost"]) for r in runs)
        print(f"{drill}: lost {lost} in {len(runs)} runs, median first {seconds(first)} s, median gap {seconds(gap)} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
