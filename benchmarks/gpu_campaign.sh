#!/usr/bin/env bash
# The GPU campaign of issue 15, as one command (benchmarks/README.md, "GPU campaign", has the `run`
# call that starts it). Options go to benchmarks/gpu_campaign.py (`--help`); results go to $OUT.
#   bash benchmarks/gpu_campaign.sh --budget-s 550 --commit <sha>
#   bash benchmarks/gpu_campaign.sh --tiny --work /tmp/gc --out /tmp/gc-out   # CPU dry run, about a minute
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
exec "${PYTHON:-python3}" benchmarks/gpu_campaign.py "$@"
