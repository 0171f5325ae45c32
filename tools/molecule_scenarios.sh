#!/usr/bin/env bash
# Runs `molecule test -s <scenario>` for each scenario given, JOBS at a time (make molecule).
#   tools/molecule_scenarios.sh JOBS SCENARIO...
# The base image and the wheelhouse, which every scenario's dependency step makes when missing,
# are made once first, so that parallel scenarios only find them. Each scenario writes its output
# to results/molecule/<scenario>.log, printed whole when it ends (so a CI log shows one scenario
# after another, not interleaved); its seconds are appended to results/molecule-times.txt.
# Scenarios are independent: each creates and removes its own hosts (distinct names) and apt
# cache folder. Exits 1 when any failed, after all have run, naming them.
set -uo pipefail
cd "$(dirname "$0")/.."

jobs=${1:?usage: $0 JOBS SCENARIO...}
shift
[ "$#" -gt 0 ] || { echo "usage: $0 JOBS SCENARIO..." >&2; exit 2; }
mkdir -p results/molecule

ansible-playbook playbooks/lab/molecule-prerequisites.yml > results/molecule/prerequisites.log 2>&1 || {
  cat results/molecule/prerequisites.log
  echo "Molecule prerequisites (base image, wheelhouse) failed" >&2
  exit 1
}

run_one() {
  local scenario=$1 start result
  start=$(date +%s)
  if molecule test -s "$scenario" > "results/molecule/$scenario.log" 2>&1; then result=passed; else result=FAILED; fi
  # One writer at a time for the shared output (flock on the times file).
  {
    flock 9
    cat "results/molecule/$scenario.log"
    echo "$(date -u +%FT%TZ) molecule $scenario: $result in $(( $(date +%s) - start )) s" | tee -a results/molecule-times.txt
  } 9>>results/molecule-times.txt
  [ "$result" = passed ]
}

declare -A pid_of=()
failed=()
for scenario in "$@"; do
  while [ "${#pid_of[@]}" -ge "$jobs" ]; do
    wait -n -p done_pid
    rc=$?
    [ "$rc" -eq 0 ] || failed+=("${pid_of[$done_pid]}")
    unset "pid_of[$done_pid]"
  done
  run_one "$scenario" &
  pid_of[$!]=$scenario
done
while [ "${#pid_of[@]}" -gt 0 ]; do
  wait -n -p done_pid
  rc=$?
  [ "$rc" -eq 0 ] || failed+=("${pid_of[$done_pid]}")
  unset "pid_of[$done_pid]"
done

if [ "${#failed[@]}" -gt 0 ]; then
  # A CI log may keep only its tail: repeat, last, the lines that say why each scenario failed.
  for scenario in "${failed[@]}"; do
    echo "----- why molecule $scenario failed (results/molecule/$scenario.log) -----"
    sed 's/\x1b\[[0-9;]*m//g' "results/molecule/$scenario.log" \
      | grep -v "'molecule/default/molecule.yml' glob failed" \
      | grep -E -A3 'fatal:|FAILED!|ERROR|CRITICAL|AssertionError|^[^a-z]*E  |[0-9]+ failed[ ,]' | tail -n 60
  done
  echo "Molecule scenarios failed: ${failed[*]}"
  exit 1
fi
