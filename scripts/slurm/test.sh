#!/usr/bin/env bash
# End-to-end test of scripts/slurm/submit.sh on a throwaway single-node Slurm cluster.
#
#   1. start the cluster (scripts/slurm/cluster.sh start; stopped again on exit)
#   2. submit experiments/smoke.toml as a 4-task array plus merge job into a temp OUTDIR
#   3. wait for the jobs (bounded) and check that every task and the merge succeeded
#   4. run the same experiment unsharded, and require the merged results.csv to be
#      byte-identical to the unsharded one
# The last line is "slurm: 1 passed, 0 failed" or "slurm: 0 passed, 1 failed".
# Exit status: 0 passed, 1 failed, 2 cannot run here (not root, or no Slurm and no apt-get).
#
# Needs root (it installs slurm-wlm and munge with apt-get if missing and starts daemons).
# Environment:
#   AIRINFER                 the binary (default: <repo>/target/release/airinfer)
#   AIRINFER_SLURM_TIMEOUT   seconds to wait for the jobs (default 600)
#   AIRINFER_SLURM_TEST_FILE the experiment (default: <repo>/experiments/smoke.toml)
#   AIRINFER_SLURM_KEEP=1    leave the cluster running and keep the temp directory
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd -P)"
repo="$(cd "$here/../.." && pwd -P)"
cd "$repo"

shards=4
timeout="${AIRINFER_SLURM_TIMEOUT:-600}"
file="${AIRINFER_SLURM_TEST_FILE:-$repo/experiments/smoke.toml}"
bin="${AIRINFER:-$repo/target/release/airinfer}"

say() { echo "slurm test: $*"; }

# Preconditions that decide whether this test can run here at all: say why and exit 2.
cannot_run() {
  say "cannot run: $*" >&2
  echo "slurm: 0 passed, 1 failed"
  exit 2
}
[ "$(id -u)" -eq 0 ] || cannot_run "needs root (it installs packages and starts munged, slurmctld and slurmd)"
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  command -v apt-get >/dev/null || cannot_run "slurm-wlm/munge are not installed and apt-get is unavailable"
fi

tmp=""
started=0
passed=0
# On exit: stop the cluster (unless asked to keep it), clean up, print the summary line last.
finish() {
  local rc=$?
  trap - EXIT
  if [ "$started" -eq 1 ] && [ "${AIRINFER_SLURM_KEEP:-0}" != 1 ]; then
    bash "$here/cluster.sh" stop >&2 || say "cluster.sh stop failed" >&2
  fi
  if [ -n "$tmp" ]; then
    if [ "$passed" -eq 1 ] && [ "${AIRINFER_SLURM_KEEP:-0}" != 1 ]; then
      rm -rf -- "$tmp"
    else
      say "outputs and logs kept in $tmp" >&2
    fi
  fi
  if [ "$passed" -eq 1 ] && [ "$rc" -eq 0 ]; then
    echo "slurm: 1 passed, 0 failed"
    exit 0
  fi
  echo "slurm: 0 passed, 1 failed"
  exit 1
}
trap finish EXIT

fail() {
  say "FAIL: $*" >&2
  exit 1
}

# the last lines of the jobs' logs, to explain a failure
show_job_logs() {
  local f
  for f in "$tmp"/sharded/slurm-*.out; do
    [ -e "$f" ] || continue
    echo "---- $f" >&2
    tail -n 20 "$f" >&2
  done
}

# The binary and the experiment, checked before anything slow.
[ -e "$bin" ] || fail "airinfer binary not found: $bin (cargo build --release, or set AIRINFER)"
[ -x "$bin" ] || fail "airinfer binary is not executable: $bin"
"$bin" run --help >/dev/null 2>&1 || fail "$bin has no working 'run' subcommand ('$bin run --help' fails)"
"$bin" merge --help >/dev/null 2>&1 || fail "$bin has no working 'merge' subcommand ('$bin merge --help' fails)"
[ -f "$file" ] || fail "experiment file not found: $file"
tmp=$(mktemp -d /tmp/airinfer-slurm-test.XXXXXX)

# 1. the cluster
t0=$SECONDS
started=1
bash "$here/cluster.sh" start || fail "cluster.sh start failed"
say "cluster up in $((SECONDS - t0)) s"

# 2. submit
t1=$SECONDS
ids=$(AIRINFER="$bin" AIRINFER_OUT="$tmp/sharded" bash "$here/submit.sh" "$file" "$shards") \
  || fail "submit.sh failed"
read -r array_id merge_id <<<"$ids"
[[ "$array_id" =~ ^[0-9]+$ && "$merge_id" =~ ^[0-9]+$ ]] || fail "submit.sh printed '$ids', not two job ids"
say "submitted array job $array_id ($shards tasks) and merge job $merge_id"

# 3. wait until every record of both jobs is in a final state. Without accounting there is
# no sacct; scontrol keeps finished jobs for MinJobAge (an hour on the test cluster).
job_lines() { scontrol -o show job "$1"; } # one line per array task (or per job)
final='^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|PREEMPTED|BOOT_FAIL|DEADLINE|OUT_OF_MEMORY)$'
deadline=$((SECONDS + timeout))
while :; do
  lines=$(job_lines "$array_id" && job_lines "$merge_id") || fail "scontrol show job failed"
  states=$(grep -oE 'JobState=[A-Z_]+' <<<"$lines" | cut -d= -f2)
  pending=$(grep -cvE "$final" <<<"$states" || true)
  [ "$pending" -eq 0 ] && break
  if [ $SECONDS -ge $deadline ]; then
    squeue >&2 || true
    show_job_logs
    fail "jobs not finished after ${timeout} s"
  fi
  sleep 1
done
say "jobs finished in $((SECONDS - t1)) s"

# every array task and the merge job must have COMPLETED with exit code 0:0
problems=()
tasks=0
while read -r line; do
  [ -n "$line" ] || continue
  id=$(grep -oE '^JobId=[0-9]+' <<<"$line" | cut -d= -f2)
  task=$(grep -oE 'ArrayTaskId=[0-9]+' <<<"$line" | cut -d= -f2 || true)
  state=$(grep -oE 'JobState=[A-Z_]+' <<<"$line" | cut -d= -f2)
  code=$(grep -oE ' ExitCode=[0-9]+:[0-9]+' <<<"$line" | cut -d= -f2)
  reason=$(grep -oE ' Reason=[^ ]+' <<<"$line" | cut -d= -f2)
  if [ "$id" = "$merge_id" ]; then what="merge job $id"; else
    what="array task ${task:-?} (job $id)"
    tasks=$((tasks + 1))
  fi
  if [ "$state" != COMPLETED ] || [ "$code" != 0:0 ]; then
    problems+=("$what: $state, exit code $code, reason $reason")
  fi
done <<<"$lines"
[ "$tasks" -eq "$shards" ] || problems+=("expected $shards array tasks, scontrol shows $tasks")
for ((i = 0; i < shards; i++)); do
  [ -s "$tmp/sharded/shard-$i-of-$shards/results.csv" ] || problems+=("shard $i wrote no results.csv")
done
if [ ${#problems[@]} -gt 0 ]; then
  printf 'slurm test:   %s\n' "${problems[@]}" >&2
  show_job_logs
  fail "some jobs did not succeed"
fi
say "all $shards tasks and the merge succeeded"

# 4. the same experiment in one process, then compare
t2=$SECONDS
"$bin" run "$file" --out "$tmp/unsharded" --quiet || fail "unsharded 'airinfer run' failed"
say "unsharded run took $((SECONDS - t2)) s"
for f in experiment.json results.csv summary.csv; do
  [ -s "$tmp/sharded/$f" ] || fail "merged output has no $f"
done
runs_merged=$(find "$tmp/sharded/runs" -maxdepth 1 -name '*.json' 2>/dev/null | wc -l)
runs_full=$(find "$tmp/unsharded/runs" -maxdepth 1 -name '*.json' 2>/dev/null | wc -l)
[ "$runs_merged" -eq "$runs_full" ] || fail "merged runs/ has $runs_merged files, unsharded $runs_full"
if ! cmp "$tmp/sharded/results.csv" "$tmp/unsharded/results.csv"; then
  diff "$tmp/sharded/results.csv" "$tmp/unsharded/results.csv" | head -n 20 >&2 || true
  fail "merged results.csv differs from the unsharded one"
fi
say "merged results.csv ($(($(wc -l <"$tmp/unsharded/results.csv") - 1)) runs) is identical to the unsharded one"
say "total $((SECONDS - t0)) s"
passed=1
