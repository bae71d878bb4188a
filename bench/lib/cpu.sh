# shellcheck shell=bash
# What the CPU-cost benches (cli_top_cost.sh, ui_cost.sh) share, sourced from the repository's
# root after `set -euo pipefail`: release builds of the bench server and the CLI, a temp dir
# whose processes end with the script, the bench server with 1,000 more routes and its admin
# socket, and a process's CPU time.

cargo build --release --quiet -p underscore-bench --bin bench-server
cargo build --release --quiet -p underscore-cli
SERVER=target/release/bench-server
CLI=target/release/underscore

# $dir: a temp dir, removed on exit; every pid in $pids is killed then.
dir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

# first_line FILE PREFIX: waits (10 s at most) for a line of FILE that starts with PREFIX and
# prints the rest of it (nothing when none came).
first_line() {
  for _ in $(seq 100); do
    grep -q "^$2" "$1" 2>/dev/null && break
    sleep 0.1
  done
  sed -n "s/^$2//p" "$1" | head -1
}

# start_bench_server: $SERVER with 1,000 more routes, in underscore mode on 127.0.0.1:0; sets
# $server (its pid), $sock (its admin socket) and $routes (how many routes it lists).
start_bench_server() {
  BENCH_ROUTES=1000 "$SERVER" underscore 127.0.0.1:0 >"$dir/server.out" 2>"$dir/server.err" &
  server=$!
  pids+=("$server")
  sock=$(first_line "$dir/server.out" 'admin socket ')
  [ -S "$sock" ] || { echo "the bench server did not start" >&2; cat "$dir/server.err" >&2; exit 1; }
  routes=$(curl -s --unix-socket "$sock" 'http://./_cat/routes?h=id' | wc -l)
}

# ticks PID: the CPU time PID has used (utime + stime from /proc/PID/stat), in clock ticks:
# $hz a second.
hz=$(getconf CLK_TCK)
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
