#!/usr/bin/env bash
# Run an airinfer experiment on a Slurm cluster as a job array plus a merge job.
#
# Usage: scripts/slurm/submit.sh FILE.toml N [extra sbatch args...]
#
#   Submits an N-task job array (--array=0-(N-1)); task I runs
#     airinfer run FILE --shard I/N --out OUTDIR/shard-I-of-N --quiet
#   then a job that starts once every task has succeeded (--dependency=afterok) and runs
#     airinfer merge --out OUTDIR OUTDIR/shard-0-of-N ... OUTDIR/shard-(N-1)-of-N
#   If a task fails, Slurm cancels the merge job (--kill-on-invalid-dep=yes).
#
#   Extra arguments go to both sbatch calls (e.g. --partition=..., --account=..., --time=...,
#   --cpus-per-task=...). Each task runs airinfer with --threads set to its allocated CPUs.
#   Resubmitting the same FILE and N resumes: airinfer run skips the runs a shard directory
#   already holds (set AIRINFER_FORCE=1 to pass --force and redo them).
#   Paths are made absolute: the jobs must see this file system (as on any usual cluster).
#
# Environment:
#   AIRINFER      the airinfer binary (default: <repo>/target/release/airinfer)
#   AIRINFER_OUT  OUTDIR (default: results/<stem of FILE>, relative to the current directory)
#   AIRINFER_FORCE=1  pass --force to every task (redo finished runs)
#
# Output: what was submitted goes to stderr; stdout gets one line, the two job ids
# "ARRAY_JOB_ID MERGE_JOB_ID", for scripts:  read -r array merge < <(submit.sh exp.toml 4)
# Logs: OUTDIR/slurm-<array job>_<task>.out and OUTDIR/slurm-<merge job>-merge.out.
set -euo pipefail

usage() {
  # the comment block at the top of this file
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

# a mistake in the command line (exit 2) or a failure to submit (exit 1)
usage_error() {
  echo "submit.sh: $*" >&2
  echo "(submit.sh --help for usage)" >&2
  exit 2
}
die() {
  echo "submit.sh: $*" >&2
  exit 1
}

case "${1:-}" in
  -h | --help)
    usage
    exit 0
    ;;
esac
[ $# -ge 2 ] || usage_error "need FILE.toml and N"
file=$1
n=$2
shift 2

# the experiment file, as an absolute path (the jobs may start in another directory)
[ -f "$file" ] || usage_error "no such experiment file: $file"
[ -r "$file" ] || usage_error "cannot read $file"
file="$(cd "$(dirname "$file")" && pwd -P)/$(basename "$file")"
stem=$(basename "$file")
stem=${stem%.*}

# N: a positive whole number of shards
[[ "$n" =~ ^[1-9][0-9]*$ ]] || usage_error "N must be a positive whole number, not '$n'"

# the binary, as an absolute path; checked here, where mistakes are cheap
repo="$(cd "$(dirname "$0")/../.." && pwd -P)"
bin="${AIRINFER:-$repo/target/release/airinfer}"
if [[ "$bin" != */* ]]; then
  bin=$(command -v "$bin") || usage_error "AIRINFER=$AIRINFER is not on PATH"
fi
[ -e "$bin" ] || usage_error "airinfer binary not found: $bin (build it with 'cargo build --release' or set AIRINFER)"
[ -x "$bin" ] || usage_error "airinfer binary is not executable: $bin"
bin="$(cd "$(dirname "$bin")" && pwd -P)/$(basename "$bin")"

command -v sbatch >/dev/null || die "sbatch not found: run this where Slurm's client commands are installed"

# OUTDIR, created now so that Slurm can open the log files in it
out="${AIRINFER_OUT:-results/$stem}"
# sbatch reads % in --output as a pattern
[[ "$out" != *%* ]] || usage_error "output directory must not contain '%': $out"
mkdir -p "$out" || die "cannot create output directory $out"
out="$(cd "$out" && pwd -P)"

q() { printf '%q' "$1"; } # quote for the generated job scripts

force=""
[ "${AIRINFER_FORCE:-0}" = 1 ] && force=" --force"

# the array task: its own shard, with as many threads as Slurm gave it
array_script="#!/bin/bash
set -euo pipefail
i=\${SLURM_ARRAY_TASK_ID:?not running as a Slurm array task}
shard=$(q "$out")/shard-\$i-of-$n
threads=\${SLURM_CPUS_PER_TASK:-\${SLURM_CPUS_ON_NODE:-}}
echo \"airinfer: shard \$i/$n of $(q "$file") on \$(hostname) into \$shard\"
exec $(q "$bin") \${threads:+--threads \"\$threads\"} run $(q "$file") --shard \"\$i/$n\" --out \"\$shard\" --quiet$force
"

# the merge job: every shard by name, so that a missing one is an error rather than a gap
shards=""
for ((i = 0; i < n; i++)); do
  shards+=" $(q "$out/shard-$i-of-$n")"
done
merge_script="#!/bin/bash
set -euo pipefail
echo \"airinfer: merging $n shards into $(q "$out")\"
exec $(q "$bin") merge --out $(q "$out")$shards
"

# sbatch --parsable prints "jobid" or "jobid;cluster"
array_out=$(sbatch --parsable --array="0-$((n - 1))" --job-name="airinfer-$stem" \
  --chdir="$PWD" --output="$out/slurm-%A_%a.out" "$@" <<<"$array_script") \
  || die "sbatch of the job array failed"
array_id=${array_out%%;*}
[[ "$array_id" =~ ^[0-9]+$ ]] || die "unexpected sbatch output: $array_out"

if ! merge_out=$(sbatch --parsable --dependency="afterok:$array_id" --kill-on-invalid-dep=yes \
  --job-name="airinfer-$stem-merge" --chdir="$PWD" --output="$out/slurm-%j-merge.out" "$@" \
  <<<"$merge_script"); then
  scancel "$array_id" 2>/dev/null || true # no merge job, so no point in the array
  die "sbatch of the merge job failed (array job $array_id cancelled)"
fi
merge_id=${merge_out%%;*}

echo "submit.sh: array job $array_id ($n tasks: airinfer run $file --shard I/$n)" >&2
echo "submit.sh: merge job $merge_id (after all tasks succeed) into $out" >&2
echo "submit.sh: logs in $out/slurm-*.out" >&2
echo "$array_id $merge_id"
