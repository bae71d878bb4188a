#!/usr/bin/env bash
# Instructions per request of one bench-server, under callgrind, as bench/overhead.sh counts them
# (N1 keep-alive requests to warm up, the counters zeroed, N2 requests, the counters dumped):
#
#   bash bench/ir.sh BINARY MODE PATH [BINARY MODE PATH ...]
#   e.g. bash bench/ir.sh target/bench-stock/release/bench-plain plain /hello/bench \
#          target/bench-stock/release/bench-server underscore /hello/bench
#
# With CG_KEEP=DIR, each run's callgrind dump is kept as DIR/MODE.PATH.out (slashes as '_'), for
# `python3 bench/cgdiff.py A.out B.out`: where two servers' instructions differ, per function.
#
# Each triple prints `MODE PATH instructions/request`. Two builds of the same server (say, before
# and after a change, each built with `RUSTFLAGS="" cargo build --release -p underscore-bench`)
# compare to a few instructions. Sourced by overhead.sh for its functions.

# start BINARY MODE [wrapper...]: starts the server (pinned to core 0) and sets PID and ADDR.
start() {
  local bin=$1 mode=$2 out="$WORK/out.$RANDOM"; shift 2
  taskset -c 0 "$@" "$bin" "$mode" 127.0.0.1:0 >"$out" 2>"$out.err" &
  PID=$!
  for _ in $(seq 1 600); do
    ADDR=$(sed -n 's/^listening on //p' "$out" 2>/dev/null | head -1 || true)
    [ -n "$ADDR" ] && return 0
    sleep 0.1
  done
  { echo "server $mode did not start:"; cat "$out.err"; } >&2; exit 1
}

stop() {
  kill -INT "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
}

# ir BINARY MODE PATH: the server's instructions per request, in one process under callgrind:
# N1 requests to warm up, the counters zeroed, N2 requests, the counters dumped. (Start-up is
# left out: it is not deterministic any more, as the clock calibrates against real time.)
ir() {
  local dir="$WORK/cg"
  rm -rf "$dir"; mkdir -p "$dir"
  start "$1" "$2" valgrind --tool=callgrind --callgrind-out-file="$dir/cg.%p"
  "$CLIENT" "$ADDR" "$3" "$N1"
  command_callgrind -z "$3"
  "$CLIENT" "$ADDR" "$3" "$N2"
  command_callgrind -d "$3"
  stop
  if [ -n "${CG_KEEP:-}" ]; then
    mkdir -p "$CG_KEEP"
    cp "$dir"/cg.*.1 "$CG_KEEP/$2.${3//\//_}.out"
  fi
  awk -v n="$N2" '/^(summary|totals):/ { printf "%d\n", $2 / n; exit }' "$dir"/cg.*.1
}

# command_callgrind OPTION PATH: callgrind_control OPTION on the server. Valgrind reads the
# command when the server next runs, so a request every 0.2 s wakes it until it has (usually
# one request, counted in N2: a few instructions in 10,000 requests).
command_callgrind() {
  callgrind_control "$1" "$PID" >/dev/null 2>&1 &
  local c=$!
  sleep 0.5
  while kill -0 "$c" 2>/dev/null; do
    "$CLIENT" "$ADDR" "$2" 1
    sleep 0.2
  done
}


if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
  shopt -s inherit_errexit
  cd "$(dirname "$0")/.."
  N1=${N1:-2000}
  N2=${N2:-10000}
  RUSTFLAGS="" cargo build --release -q -p underscore-bench --bin bench-client --target-dir target/bench-stock
  CLIENT=target/bench-stock/release/bench-client
  WORK=$(mktemp -d)
  trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
  (($# % 3 == 0 && $# > 0)) || { echo "usage: bash bench/ir.sh BINARY MODE PATH [...]" >&2; exit 2; }
  while (($#)); do
    per=$(ir "$1" "$2" "$3")
    [[ $per =~ ^[0-9]+$ ]] || { echo "callgrind run of $1 $2 $3 failed" >&2; exit 1; }
    echo "$2 $3 $per"
    shift 3
  done
fi
