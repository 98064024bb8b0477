#!/usr/bin/env bash
# Runs the benchmarks that need the lent device machine (16 cores, a GPU) and records them into
# docs/benchmarks.md there, in the *-device sections (SHOAL_BENCH_RECORD_AS=device) and the gpu one.
# Each part's log, a summary and the recorded docs/benchmarks.md are copied into $OUT, which the
# device tool brings back: copy $OUT/benchmarks.md over docs/benchmarks.md here, then read the logs.
#
# Prepare here: `pnpm install && pnpm exec tsc -b && bash scripts/device-pack.sh`; then call the device
# tool with carry [".device", "packages/cli/dist", "packages/node/dist", "packages/protocol/dist",
# "packages/runtime/dist", "packages/scheduler/dist", "packages/sim/dist"] and the command
#   source .device/setup.sh && bash scripts/device-run.sh [gpu] [scaling] [transfer] [models]
# (all four when none is named; about 5 minutes in all, each part under its own time limit). The
# machine goes back after 30 s idle, so split the parts over calls only if they come back to back.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/shoal-device-out}
mkdir -p "$out"
parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(gpu scaling transfer models pipeline)
{
  echo "cores: $(nproc)"
  grep -m1 'model name' /proc/cpuinfo
  free -g | head -2
  nvidia-smi -L 2>&1 || true
  node --version
} > "$out/machine.txt" 2>&1

run_part () {
  local part=$1
  case $part in
    gpu)
      # WebGPU from the node's inference thread is unverified: if its pieces fall back, try the main thread
      timeout 400 node scripts/bench.mjs gpu --record ||
        SHOAL_INFERENCE_THREAD=0 timeout 400 node scripts/bench.mjs gpu --record
      ;;
    scaling)
      SHOAL_BENCH_RECORD_AS=device SHOAL_BENCH_WORKERS=1,2,4,8,12 SHOAL_BENCH_JOB_ROWS=1920 SHOAL_BENCH_ROWS_PER_PIECE=8 \
        timeout 400 node scripts/bench.mjs jobs throughput --record
      SHOAL_BENCH_RECORD_AS=device SHOAL_BENCH_WORKERS=1,2,4,8,12 SHOAL_BENCH_JOB_MODEL=mlp SHOAL_BENCH_JOB_ROWS=6144 SHOAL_BENCH_ROWS_PER_PIECE=128 \
        timeout 400 node scripts/bench.mjs jobs throughput --record
      ;;
    transfer)
      # three runs for the spread; the last is recorded
      timeout 120 node scripts/bench.mjs jobs transfer
      timeout 120 node scripts/bench.mjs jobs transfer
      SHOAL_BENCH_RECORD_AS=device timeout 120 node scripts/bench.mjs jobs transfer --record
      ;;
    models)
      SHOAL_BENCH_RECORD_AS=device timeout 400 node scripts/bench.mjs models --record
      ;;
    pipeline)
      # a worker (and so a core) per stage: the pipeline's ideal is its slowest stage's rate
      SHOAL_BENCH_RECORD_AS=device SHOAL_BENCH_PIPELINE_WORKERS=8 SHOAL_BENCH_PIPELINE_ROWS=384 \
        timeout 400 node scripts/bench.mjs pipeline --record
      ;;
    *)
      echo "unknown part $part (gpu, scaling, transfer, models, pipeline)"
      return 2
      ;;
  esac
}

for part in "${parts[@]}"; do
  started=$(date +%s)
  run_part "$part" > "$out/$part.log" 2>&1
  code=$?
  echo "$part: exit $code after $(( $(date +%s) - started )) s" | tee -a "$out/summary.txt"
  cp docs/benchmarks.md "$out/benchmarks.md"
done
