#!/usr/bin/env bash
# The console's and a scraper's cost on wail's highest sustainable rate
# (docs/benchmarks.md, "Console and metrics cost"). ROUNDS times, alternating:
# `wail bench --find-max` against a fresh `wail serve` with nothing watching
# ("plain"), then the same with headless Chromium showing the console's live
# page (it polls /console/api/series every second) and curl scraping /metrics
# every second ("observed"). Prints one line per run (the 1-minute load average
# before and after) and the medians.
#
#   bash scripts/bench-console.sh [ROUNDS] [wail bench flags...]
#   bash scripts/bench-console.sh 3 --start-rate 2000 --step-factor 1.1 --step-duration 5s --max-steps 8
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
shift || true
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/wail" ./cmd/wail
addr=127.0.0.1:${WAIL_BENCH_PORT:-17171}
chrome=${WAIL_CHROMIUM:-chromium}

run() { # $1: plain or observed; the rest: bench flags
  local mode=$1
  shift
  local dir
  dir=$(mktemp -d -p "$work")
  "$work/wail" serve --listen "$addr" --data-dir "$dir/data" >"$dir/serve.log" 2>&1 &
  local srv=$! obs=()
  until curl -sf "http://$addr/healthz" >/dev/null; do
    kill -0 "$srv" 2>/dev/null || { cat "$dir/serve.log" >&2; exit 1; }
    sleep 0.2
  done
  if [ "$mode" = observed ]; then
    "$chrome" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --remote-debugging-port=0 \
      --user-data-dir="$dir/chrome" "http://$addr/console/#live" >/dev/null 2>&1 &
    obs+=($!)
    (while sleep 1; do curl -sf -o /dev/null "http://$addr/metrics" || true; done) &
    obs+=($!)
  fi
  local before after out
  before=$(cut -d' ' -f1 /proc/loadavg)
  out=$("$work/wail" bench --addr "$addr" --find-max "$@" --json 2>"$dir/bench.log") || { cat "$dir/bench.log" >&2; exit 1; }
  after=$(cut -d' ' -f1 /proc/loadavg)
  if [ "$mode" = observed ] && ! kill -0 "${obs[0]}" 2>/dev/null; then
    echo "chromium died during the run: the console was not open" >&2
    exit 1
  fi
  [ ${#obs[@]} -eq 0 ] || kill "${obs[@]}" 2>/dev/null || true
  kill "$srv"
  wait 2>/dev/null || true
  jq -r --arg mode "$mode" --arg before "$before" --arg after "$after" \
    '"\($mode) max_sustainable_rate=\(.find_max.max_sustainable_rate) writes_per_sec=\(.find_max.max_sustainable_writes_per_sec | floor) first_unsustainable=\(.find_max.first_unsustainable_rate) load=\($before)->\($after)"' <<<"$out"
  rm -rf "$dir"
}

results=$work/results
for i in $(seq "$rounds"); do
  for mode in plain observed; do
    run "$mode" "$@" | tee -a "$results"
  done
done
for mode in plain observed; do
  grep "^$mode " "$results" | sed 's/.*writes_per_sec=\([0-9]*\).*/\1/' | sort -n |
    awk -v m="$mode" '{v[NR]=$1} END {printf "%s: median %d writes/s of %d runs\n", m, v[int((NR+1)/2)], NR}'
done
