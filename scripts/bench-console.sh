#!/usr/bin/env bash
# The console's and a scraper's cost on wail's highest sustainable rate
# (docs/benchmarks.md, "Console and metrics cost"). ROUNDS times, alternating:
# `wail bench --find-max` against a fresh `wail serve` with nothing watching
# ("plain"), then the same with headless Chromium showing the console's live
# page (it polls /console/api/series every second) and curl scraping /metrics
# every second ("observed"). Prints one line per run: the highest sustainable
# rate, the server's CPU time per 1000 acknowledged writes over the whole run
# (/proc/PID/stat; robust to a loaded machine where rates are not), the
# 1-minute load average before and after; then the medians.
# FIXED_RATE=R runs `wail bench --rate R` instead of --find-max (the CPU per
# write at one rate).
#
#   bash scripts/bench-console.sh [ROUNDS] [wail bench flags...]
#   bash scripts/bench-console.sh 3 --start-rate 2000 --step-factor 1.1 --step-duration 5s --max-steps 8
#   FIXED_RATE=1000 bash scripts/bench-console.sh 3 --duration 20s
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
  local before after out cpu0 cpu1 writes
  local how=(--find-max)
  [ -z "${FIXED_RATE:-}" ] || how=(--rate "$FIXED_RATE")
  before=$(cut -d' ' -f1 /proc/loadavg)
  cpu0=$(awk '{print $14 + $15}' "/proc/$srv/stat")
  out=$("$work/wail" bench --addr "$addr" "${how[@]}" "$@" --json 2>"$dir/bench.log") || { cat "$dir/bench.log" >&2; exit 1; }
  cpu1=$(awk '{print $14 + $15}' "/proc/$srv/stat")
  after=$(cut -d' ' -f1 /proc/loadavg)
  writes=$(curl -sf "http://$addr/metrics" | awk '/^wail_proxy_mutations_total/ && !/result="rejected"/ {n += $NF} END {printf "%d", n}')
  if [ "$mode" = observed ] && ! kill -0 "${obs[0]}" 2>/dev/null; then
    echo "chromium died during the run: the console was not open" >&2
    exit 1
  fi
  [ ${#obs[@]} -eq 0 ] || kill "${obs[@]}" 2>/dev/null || true
  kill "$srv"
  wait 2>/dev/null || true
  local cpu_ms=$(((cpu1 - cpu0) * 1000 / $(getconf CLK_TCK)))
  jq -r --arg mode "$mode" --arg before "$before" --arg after "$after" --argjson cpu "$cpu_ms" --argjson writes "$writes" \
    '"\($mode) writes_per_sec=\((.find_max.max_sustainable_writes_per_sec // .steps[-1].writes_per_sec) | floor) max_sustainable_rate=\(.find_max.max_sustainable_rate // "-") first_unsustainable=\(.find_max.first_unsustainable_rate // "-") server_cpu_ms_per_1k_writes=\($cpu * 1000 / $writes | floor) load=\($before)->\($after)"' <<<"$out"
  rm -rf "$dir"
}

results=$work/results
for i in $(seq "$rounds"); do
  for mode in plain observed; do
    run "$mode" "$@" | tee -a "$results"
  done
done
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
for mode in plain observed; do
  rate=$(grep "^$mode " "$results" | sed 's/.*writes_per_sec=\([0-9]*\).*/\1/' | median)
  cpu=$(grep "^$mode " "$results" | sed 's/.*cpu_ms_per_1k_writes=\([0-9]*\).*/\1/' | median)
  echo "$mode: median of $rounds runs: $rate writes/s, server CPU $cpu ms per 1000 writes"
done
