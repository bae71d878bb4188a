#!/usr/bin/env bash
# A storm on a real socket: N requests waiting at once on one worker, each on its own
# keep-alive connection, in plain actix-web (`bench-plain`) and with underscore fully on
# (`bench-server`, the route annotated). Prints the server's memory per waiting request
# (VmRSS before and after, divided by N), the difference, and, for the tracked server, how
# long the task APIs, `top`'s poll and a Prometheus scrape take with N in flight (medians of
# RUNS), and how long interrupting all of them takes until every client holds its 503.
#
#   bash bench/scale.sh                 # N: the open-files limit less 1,000
#   N=5000 RUNS=3 bash bench/scale.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n "$(ulimit -Hn)"
N=${N:-$(( $(ulimit -n) - 1000 ))}
RUNS=${RUNS:-5}

RUSTFLAGS="" cargo build --release --quiet -p underscore-bench \
  --bin bench-plain --bin bench-server --bin bench-hold
PLAIN=target/release/bench-plain
SERVER=target/release/bench-server
HOLD=target/release/bench-hold

dir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# Waits until the RSS of $1 has not moved for a second.
settle() {
  local last=-1 now
  for _ in $(seq 120); do
    now=$(rss_kb "$1")
    [ "$now" = "$last" ] && return
    last=$now
    sleep 1
  done
}

# start BIN MODE: starts a server; sets $server, $addr and $sock.
start() {
  : >"$dir/out"
  BENCH_METRICS=1 "$1" "$2" 127.0.0.1:0 >"$dir/out" 2>"$dir/err" &
  server=$!
  pids+=("$server")
  for _ in $(seq 100); do
    grep -q '^listening on ' "$dir/out" 2>/dev/null && break
    sleep 0.1
  done
  addr=$(sed -n 's/^listening on //p' "$dir/out" | head -1)
  sock=$(sed -n 's/^admin socket //p' "$dir/out")
  [ -n "$addr" ] || { echo "$1 did not start" >&2; cat "$dir/err" >&2; exit 1; }
  # Warm up: the allocator's first arenas and actix's pools are not the requests' cost.
  for _ in $(seq 200); do curl -s -o /dev/null "http://$addr/json"; done
}

# hold: N requests to /wait, held by bench-hold (stdin from a fifo); sets $hold and $bytes.
hold() {
  local admin=("$@")
  rm -f "$dir/fifo"; mkfifo "$dir/fifo"
  settle "$server"
  local before; before=$(rss_kb "$server")
  "$HOLD" "$addr" /wait "$N" "${admin[@]}" <"$dir/fifo" >"$dir/hold.out" 2>"$dir/hold.err" &
  hold=$!
  pids+=("$hold")
  exec 9>"$dir/fifo"
  until grep -q '^held ' "$dir/hold.out" 2>/dev/null; do
    kill -0 "$hold" 2>/dev/null || { cat "$dir/hold.err" >&2; exit 1; }
    sleep 0.2
  done
  settle "$server"
  local after; after=$(rss_kb "$server")
  bytes=$(( (after - before) * 1024 / N ))
}

# timed NAME URL...: the median time and the size of RUNS answers (curl over $sock, or http).
timed() {
  local name=$1; shift
  local times=() size=0 t s
  for _ in $(seq "$RUNS"); do
    local total=0 bytes=0
    for url in "$@"; do
      if [[ $url == http://127.* ]]; then
        read -r t s < <(curl -s -o /dev/null -w '%{time_total} %{size_download}\n' "$url")
      else
        read -r t s < <(curl -s -o /dev/null -w '%{time_total} %{size_download}\n' \
          --unix-socket "$sock" "http://admin$url")
      fi
      total=$(awk -v a="$total" -v b="$t" 'BEGIN { print a + b }')
      bytes=$((bytes + s))
    done
    times+=("$total"); size=$bytes
  done
  local median
  median=$(printf '%s\n' "${times[@]}" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
  printf '  %-46s %8.1f ms %10s bytes\n' "$name" "$(awk -v m="$median" 'BEGIN { print m * 1000 }')" "$size"
}

echo "N = $N requests waiting on one worker, each on its own connection"

start "$PLAIN" plain
hold
plain_bytes=$bytes
echo "plain actix-web:    $plain_bytes bytes per waiting request (VmRSS delta / N)"
exec 9>&-
kill "$server" "$hold" 2>/dev/null || true
wait "$server" "$hold" 2>/dev/null || true

start "$SERVER" underscore
hold "$sock" /_routes/wait/interrupt
tracked_bytes=$bytes
echo "underscore tracked: $tracked_bytes bytes per waiting request"
echo "difference:         $((tracked_bytes - plain_bytes)) bytes per waiting request"
tasks=$(curl -s --unix-socket "$sock" 'http://admin/_cat/tasks/summary?h=tasks' | awk '{ s += $1 } END { print s }')
routes=$(curl -s --unix-socket "$sock" 'http://admin/_cat/routes?h=id' | wc -l)
echo "tasks in flight (from _cat/tasks/summary): $tasks; routes known: $routes (the bench's 1,000 extra are compiled in)"
echo "with $N in flight, medians of $RUNS:"
timed "_tasks?group_by=none" "/_tasks?group_by=none"
timed "_cat/tasks" "/_cat/tasks"
timed "_cat/tasks?s=running_time:desc&size=20" "/_cat/tasks?s=running_time:desc&size=20"
timed "_cat/tasks/summary" "/_cat/tasks/summary"
timed "_tasks?group_by=routes" "/_tasks?group_by=routes"
# What `top` asks every interval at 40 lines (after its first poll, which learns the columns).
cols=id,method,path,stats.req.total,stats.req.active,stats.resp.5xx,stats.resp.time_p50
cols=$cols,stats.resp.time_p99,stats.req.shed,stats.req.timed_out,limits.max_in_flight
cols=$cols,limits.timeout,preempt,preempt.percent
timed "top's poll (routes, 40 longest tasks, summary)" \
  "/_cat/routes?format=json&h=$cols" \
  "/_tasks?detailed&group_by=none&sort=running_time:desc&size=40" \
  "/_tasks?group_by=routes"
timed "a Prometheus scrape (/metrics on the app's port)" "http://$addr/metrics"
echo >&9
wait "$hold"
sed 's/^/  /' "$dir/hold.out" | grep interrupt
