#!/usr/bin/env bash
# Overhead of underscore against plain actix-web and actix-web-prom, side by side, in one run.
#
#   bash bench/overhead.sh            (ROUNDS=5 DURATION=5 CONNS=32 by default)
#
# Three servers with the same handlers and one worker: (a) plain actix-web, (b) underscore
# fully on (every handler annotated, Observe, stats, in-flight tracking, admin socket up),
# (c) actix-web-prom. Two instruments, as the project's measuring notes recommend:
#   1. instructions per request under valgrind's callgrind (deterministic): the server counts
#      N1 and then N2 keep-alive requests; (Ir2 - Ir1) / (N2 - N1);
#   2. wrk on keep-alive connections, the server pinned to core 0 and wrk to core 1, servers
#      alternated a, b, c for ROUNDS rounds: median requests/s and p50/p99 latency, and the
#      ratios b/a and c/a with min, median and max over the rounds.
# Then a round with 1,000 more routes, the _cat/routes render time for 10,000 routes, the
# interrupt latency for 1,000 in-flight requests, and the memory per route and per request.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
CONNS=${CONNS:-32}
N1=${N1:-2000}
N2=${N2:-12000}
PATHS=("/hello/bench" "/json")
MODES=(plain underscore prom)

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v valgrind >/dev/null || missing+=(valgrind)
command -v taskset >/dev/null || missing+=(util-linux)
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cargo build --release -q -p underscore-bench
SERVER=target/release/bench-server
CLIENT=target/release/bench-client
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

# start MODE [wrapper...]: starts the server (pinned to core 0) and sets PID and ADDR.
start() {
  local mode=$1; shift
  rm -f "$WORK/out"
  taskset -c 0 "$@" "$SERVER" "$mode" 127.0.0.1:0 >"$WORK/out" 2>"$WORK/err" &
  PID=$!
  for _ in $(seq 1 600); do
    ADDR=$(sed -n 's/^listening on //p' "$WORK/out" 2>/dev/null | head -1)
    [ -n "$ADDR" ] && return 0
    sleep 0.1
  done
  echo "server $mode did not start:"; cat "$WORK/err"; exit 1
}

stop() {
  kill -INT "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
}

# ir MODE PATH N: the server's total instructions when it served N requests to PATH.
ir() {
  local out="$WORK/cg.$1.$3"
  start "$1" valgrind --tool=callgrind --callgrind-out-file="$out"
  "$CLIENT" "$ADDR" "$2" "$3"
  stop
  awk '/^(summary|totals):/ { print $2; exit }' "$out"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# A latency in microseconds, whatever unit wrk chose.
us() { awk '{ v = $1; if (v ~ /us$/) { sub(/us$/, "", v); print v } else if (v ~ /ms$/) { sub(/ms$/, "", v); print v * 1000 } else if (v ~ /s$/) { sub(/s$/, "", v); print v * 1000000 } }'; }
minmax() { sort -g | awk 'NR == 1 { min = $1 } { max = $1 } END { printf "%s..%s", min, max }'; }

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== 1. instructions per request (callgrind, 1 worker, (Ir($N2) - Ir($N1)) / $((N2 - N1)))"
printf "%-28s %12s %8s\n" "server, route" "instr/req" "vs plain"
for routes in "" 1000; do
  export BENCH_ROUTES=$routes
  for path in "${PATHS[@]}"; do
    [ -n "$routes" ] && [ "$path" != "/hello/bench" ] && continue
    base=""
    for mode in "${MODES[@]}"; do
      a=$(ir "$mode" "$path" "$N1"); b=$(ir "$mode" "$path" "$N2")
      per=$(( (b - a) / (N2 - N1) ))
      [ -z "$base" ] && base=$per
      label="$mode $path${routes:+ (+1000 routes)}"
      printf "%-28s %12d %8s\n" "$label" "$per" "$(awk -v x="$per" -v y="$base" 'BEGIN { printf "%.3f", x / y }')"
    done
  done
done
unset BENCH_ROUTES

echo "== 2. wrk -t1 -c$CONNS -d${DURATION}s --latency, server on core 0, wrk on core 1, $ROUNDS rounds"
for path in "${PATHS[@]}"; do
  : >"$WORK/rounds"
  for round in $(seq 1 "$ROUNDS"); do
    for mode in "${MODES[@]}"; do
      start "$mode"
      taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "http://$ADDR$path" >"$WORK/wrk" 2>&1
      stop
      rps=$(awk '/^Requests\/sec:/ { print $2 }' "$WORK/wrk")
      p50=$(awk '$1 == "50%" { print $2 }' "$WORK/wrk" | us)
      p99=$(awk '$1 == "99%" { print $2 }' "$WORK/wrk" | us)
      echo "$round $mode $rps $p50 $p99" >>"$WORK/rounds"
    done
  done
  echo "-- GET $path"
  printf "%-11s %12s %10s %10s\n" server "median rps" "p50 (us)" "p99 (us)"
  for mode in "${MODES[@]}"; do
    rps=$(awk -v m="$mode" '$2 == m { print $3 }' "$WORK/rounds" | median)
    p50=$(awk -v m="$mode" '$2 == m { print $4 }' "$WORK/rounds" | median)
    p99=$(awk -v m="$mode" '$2 == m { print $5 }' "$WORK/rounds" | median)
    printf "%-11s %12.0f %10.1f %10.1f\n" "$mode" "$rps" "$p50" "$p99"
  done
  for mode in underscore prom; do
    ratios=$(awk -v m="$mode" '$2 == "plain" { a[$1] = $3 } $2 == m { b[$1] = $3 } END { for (r in a) if (b[r] != "") printf "%.3f\n", b[r] / a[r] }' "$WORK/rounds")
    p99r=$(awk -v m="$mode" '$2 == "plain" { a[$1] = $5 } $2 == m { b[$1] = $5 } END { for (r in a) if (b[r] != "") printf "%.3f\n", b[r] / a[r] }' "$WORK/rounds")
    echo "$mode/plain: throughput median $(echo "$ratios" | median) (range $(echo "$ratios" | minmax)), p99 median $(echo "$p99r" | median) (range $(echo "$p99r" | minmax))"
  done
done

echo "-- GET /hello/bench with 1,000 more routes, one round"
export BENCH_ROUTES=1000
for mode in "${MODES[@]}"; do
  start "$mode"
  taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "http://$ADDR/hello/bench" >"$WORK/wrk" 2>&1
  stop
  echo "$mode: $(awk '/^Requests\/sec:/ { print $2 }' "$WORK/wrk") rps, p99 $(awk '$1 == "99%" { print $2 }' "$WORK/wrk")"
done
unset BENCH_ROUTES

echo "== 3. _cat/routes with 10,000 routes"
cargo bench -q -p underscore-core --bench cat_render 2>/dev/null
echo "== 4. interrupting 1,000 in-flight requests"
cargo bench -q -p underscore-tests --bench interrupt 2>/dev/null | tail -1
echo "== 5. memory"
cargo run -q --release -p underscore-bench --bin bench-sizes
