#!/usr/bin/env bash
# Runs every target for SECONDS (default 60) against its seeded corpus, two at a time, with
# allocation and memory limits (an input that makes a parser allocate past them is a finding),
# and prints libFuzzer's final statistics. Build first: RUSTC_BOOTSTRAP=1 cargo fuzz build --dev -s none
set -uo pipefail
cd "$(dirname "$0")"
secs=${SECONDS_PER_TARGET:-60}
bin=target/x86_64-unknown-linux-gnu/debug
[ -d corpus ] || ./seed.sh
mkdir -p logs
targets=(protocol scores config bin_pickle pth pth_pickle safetensors metrics_jsonl image_decode mtcnn_weights)
run() {
    mkdir -p "artifacts/$1" "corpus/$1"
    "$bin/$1" "corpus/$1" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2560 -malloc_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="artifacts/$1/" > "logs/$1.log" 2>&1
    echo "$1: exit $? $(grep -E '^stat::number_of_executed_units' "logs/$1.log")"
}
for ((i = 0; i < ${#targets[@]}; i += 2)); do
    run "${targets[i]}" &
    [ -n "${targets[i+1]:-}" ] && run "${targets[i+1]}" &
    wait
done
