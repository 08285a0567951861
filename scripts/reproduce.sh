#!/usr/bin/env bash
# Regenerate every figure airinfer reproduces into results/<name>/ and print the wall time of each:
# Zhang et al. 2025 (experiments/paper_*.toml), the head-to-head of the four systems
# (experiments/systems_*.toml), serving on one Wi-Fi channel (experiments/serving_*.toml), the pipeline papers' claims (experiments/repro_*.toml:
# EdgeShard, LinguaLinked, MDI-LLM) and AirComp at waveform level (experiments/waveform_*.toml,
# through the emulator). Finished runs are kept (resume); pass
# --force to redo them. The release binary is built first; the model is fetched on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
bin=target/release/airinfer
total_start=$(date +%s)
for f in experiments/paper_*.toml experiments/systems_*.toml experiments/serving_*.toml experiments/repro_*.toml experiments/waveform_*.toml; do
  start=$(date +%s)
  "$bin" run "$f" --quiet "$@"
  echo "$(basename "$f" .toml): $(( $(date +%s) - start )) s → results/$(basename "$f" .toml)/"
done
echo "all figures: $(( $(date +%s) - total_start )) s"
