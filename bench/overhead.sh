#!/usr/bin/env bash
# Overhead of underscore against plain actix-web and actix-web-prom, side by side, in one run.
#
#   bash bench/overhead.sh   (ROUNDS=30 DURATION=2 CONNS=32 LATENCY_ROUNDS=10 by default)
#
# Servers with the same handlers and one worker, all built alike: release, and without
# `--cfg tokio_unstable` (so the baselines are plain actix-web as its users build it):
#   plain              plain actix-web;
#   plain(again)       the same binary a second time: the A/A control, whose ratio to plain is
#                      this machine's noise floor;
#   underscore         fully on: every handler annotated, Observe, stats, in-flight tracking,
#                      the admin socket up (default features);
#   underscore+stacks  the same with `print_stack` on (feature taskdump, --cfg tokio_unstable):
#                      tokio then traces every task, a cost paid by the whole runtime;
#   prom               actix-web-prom 0.10;
#   floor              (section 1 only) plain actix-web with a do-nothing middleware at the App
#                      and on each resource, where Observe and Track sit.
# Two instruments, as the project's measuring notes recommend:
#   1. instructions per request under valgrind's callgrind (repeatable to a few instructions):
#      the counters are zeroed after N1 keep-alive requests and dumped after N2 more;
#   2. wrk on keep-alive connections, the servers pinned to core 0 and wrk to core 1: all
#      servers up at once, ROUNDS rounds of a DURATION-second burst on each, the order rotated
#      each round (so none always follows another): median requests/s and p50/p99 latency, and
#      each server's ratios to plain within a round (the mean of its two plain bursts), with
#      min, median and max over the rounds; then LATENCY_ROUNDS rounds the same way with one
#      connection, for the latency of a request rather than of a queue.
# Then, with 1,000 more routes, underscore and prom each with and without a scraper fetching
# their /metrics every second (SCRAPE_ROUNDS rounds, default ROUNDS),
# then a round with 1,000 more routes, the _cat/routes render time for 10,000 routes, one
# Prometheus scrape of 1,000 routes, the
# interrupt latency for 1,000 in-flight requests, and the memory per route and per request.
# It stops with exit code 1 right after section 1 if underscore's /hello/bench costs more than
# MAX_HELLO_RATIO (1.03) times plain's instructions per request.
set -euo pipefail
# `set -e` inside command substitutions too: a failed callgrind run must stop the script.
shopt -s inherit_errexit
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-30}
DURATION=${DURATION:-2}
CONNS=${CONNS:-32}
LATENCY_ROUNDS=${LATENCY_ROUNDS:-10}
N1=${N1:-2000}
N2=${N2:-10000}
PATHS=("/hello/bench" "/json")
# The regression check: the run fails when underscore's instructions per request on
# /hello/bench exceed this many times plain's.
MAX_HELLO_RATIO=${MAX_HELLO_RATIO:-1.03}

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v valgrind >/dev/null || missing+=(valgrind)
command -v taskset >/dev/null || missing+=(util-linux)
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The stock build has its own target directory: an empty RUSTFLAGS overrides the repository's
# `--cfg tokio_unstable`, which would otherwise make cargo rebuild everything back and forth.
RUSTFLAGS="" cargo build --release -q -p underscore-bench --target-dir target/bench-stock
cargo build --release -q -p underscore-bench --features taskdump
STOCK=target/bench-stock/release/bench-server
STACKS=target/release/bench-server
# The baselines are a binary without underscore in it, so that a change to underscore cannot
# move how plain actix's code is laid out (it did, by up to 340 instructions a request).
PLAIN=target/bench-stock/release/bench-plain
CLIENT=target/bench-stock/release/bench-client
# label, binary, mode
SERVERS=("plain $PLAIN plain" "plain(again) $PLAIN plain" "underscore $STOCK underscore"
  "underscore+stacks $STACKS underscore" "prom $PLAIN prom")
# Section 1 only: plain actix with a do-nothing middleware where underscore has each of its
# own, the floor of any middleware there.
FLOOR="floor $PLAIN floor"
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

# start, stop, ir and command_callgrind: shared with bench/ir.sh.
source bench/ir.sh

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# A latency in microseconds, whatever unit wrk chose.
us() { awk '{ v = $1; if (v ~ /us$/) { sub(/us$/, "", v); print v } else if (v ~ /ms$/) { sub(/ms$/, "", v); print v * 1000 } else if (v ~ /s$/) { sub(/s$/, "", v); print v * 1000000 } }'; }
minmax() { sort -g | awk 'NR == 1 { min = $1 } { max = $1 } END { printf "%s..%s", min, max }'; }

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== 1. instructions per request (callgrind, 1 worker, $N2 keep-alive requests after $N1)"
printf "%-40s %12s %8s\n" "server, route" "instr/req" "vs plain"
for routes in "" 1000; do
  export BENCH_ROUTES=$routes
  for path in "${PATHS[@]}"; do
    [ -n "$routes" ] && [ "$path" != "/hello/bench" ] && continue
    base=""
    for server in "${SERVERS[@]}" "$FLOOR"; do
      read -r label bin mode <<<"$server"
      [ "$label" = "plain(again)" ] && continue
      [ "$label" = floor ] && [ -n "$routes" ] && continue
      per=$(ir "$bin" "$mode" "$path")
      [[ $per =~ ^[0-9]+$ ]] || { echo "callgrind run of $label $path failed" >&2; exit 1; }
      [ -z "$base" ] && base=$per
      ratio=$(awk -v x="$per" -v y="$base" 'BEGIN { printf "%.4f", x / y }')
      printf "%-40s %12d %8.3f\n" "$label $path${routes:+ (+1000 routes)}" "$per" "$ratio"
      if [ "$label $path$routes" = "underscore /hello/bench" ]; then
        hello_ratio=$ratio
      fi
    done
  done
done
unset BENCH_ROUTES
# Checked at once: a regression is reported without waiting for the rest of the run.
if awk -v r="$hello_ratio" -v max="$MAX_HELLO_RATIO" 'BEGIN { exit !(r > max) }'; then
  echo "FAIL: underscore /hello/bench costs ${hello_ratio}x plain's instructions per request (limit ${MAX_HELLO_RATIO}x)" >&2
  exit 1
fi
echo "check: underscore /hello/bench at ${hello_ratio}x plain's instructions (limit ${MAX_HELLO_RATIO}x)"

echo "== 2. wrk -t1 -c$CONNS --latency, server on core 0, wrk on core 1: all servers up at once (idle but the one loaded), $ROUNDS rounds of a ${DURATION}s burst each, order rotated"
# Short interleaved bursts against servers that stay up: a slow drift of the machine (another
# tenant, frequency) hits every server alike within a round, which restarting servers for
# longer runs did not give. Ratios are taken within a round, against the mean of the two
# plain runs of that round; plain(again)/plain is the noise floor.
PIDS=(); ADDRS=()
for server in "${SERVERS[@]}"; do
  read -r label bin mode <<<"$server"
  start "$bin" "$mode"
  PIDS+=("$PID"); ADDRS+=("$ADDR")
done
# ratios LABEL COLUMN: per round, LABEL's COLUMN over the plain baseline of the round.
ratios() {
  awk -v m="$1" -v c="$2" '
    $2 == "plain" { a[$1] += $c / 2 } $2 == "plain(again)" { a[$1] += $c / 2; p[$1] = $c }
    $2 == m { b[$1] = $c }
    END { for (r in a) if (b[r] != "") printf "%.3f\n", (m == "plain(again)" ? b[r] / (2 * a[r] - p[r]) : b[r] / a[r]) }' "$WORK/rounds"
}
# rounds CONNS ROUNDS: the rounds on every path, with CONNS keep-alive connections.
rounds() {
  local conns=$1 n=$2
  for path in "${PATHS[@]}"; do
    : >"$WORK/rounds"
    for i in "${!SERVERS[@]}"; do
      taskset -c 1 wrk -t1 -c"$conns" -d1s "http://${ADDRS[$i]}$path" >/dev/null 2>&1
    done
    for round in $(seq 1 "$n"); do
      for k in "${!SERVERS[@]}"; do
        i=$(( (k + round) % ${#SERVERS[@]} ))
        read -r label _ _ <<<"${SERVERS[$i]}"
        taskset -c 1 wrk -t1 -c"$conns" -d"${DURATION}s" --latency "http://${ADDRS[$i]}$path" >"$WORK/wrk" 2>&1
        rps=$(awk '/^Requests\/sec:/ { print $2 }' "$WORK/wrk")
        p50=$(awk '$1 == "50%" { print $2 }' "$WORK/wrk" | us)
        p99=$(awk '$1 == "99%" { print $2 }' "$WORK/wrk" | us)
        echo "$round $label $rps $p50 $p99" >>"$WORK/rounds"
      done
    done
    echo "-- GET $path, $conns connection(s), $n rounds"
    printf "%-18s %11s %9s %9s   %-34s %s\n" server "median rps" "p50 (us)" "p99 (us)" \
      "throughput vs plain: median (min..max)" "p99 vs plain: median (min..max)"
    for server in "${SERVERS[@]}"; do
      read -r label _ _ <<<"$server"
      rps=$(awk -v m="$label" '$2 == m { print $3 }' "$WORK/rounds" | median)
      p50=$(awk -v m="$label" '$2 == m { print $4 }' "$WORK/rounds" | median)
      p99=$(awk -v m="$label" '$2 == m { print $5 }' "$WORK/rounds" | median)
      t="1"; l="1"
      if [ "$label" != plain ]; then
        t="$(ratios "$label" 3 | median) ($(ratios "$label" 3 | minmax))"
        l="$(ratios "$label" 5 | median) ($(ratios "$label" 5 | minmax))"
      fi
      printf "%-18s %11.0f %9.1f %9.1f   %-34s %s\n" "$label" "$rps" "$p50" "$p99" "$t" "$l"
    done
    t=$(ratios underscore 3 | median); l=$(ratios underscore 5 | median)
    t="throughput median $t >= 0.97: $(awk -v x="$t" 'BEGIN { print (x >= 0.97 ? "met" : "MISSED") }')"
    l="p99 median $l <= 1.10: $(awk -v x="$l" 'BEGIN { print (x <= 1.10 ? "met" : "MISSED") }')"
    # With one connection the request rate is the round trip's: only the latency is judged.
    if [ "$conns" = 1 ]; then echo "target, underscore/plain: $l"; else echo "target, underscore/plain: $t, $l"; fi
  done
}
rounds "$CONNS" "$ROUNDS"
# Saturated, a p99 is mostly the queue of CONNS requests and the machine's hiccups (even the
# A/A control's per-round p99 ratios span 0.1..10x). One connection measures a request's own
# latency, the middleware's share of it included.
echo "== 2b. the same with one connection (latency, not saturation), $LATENCY_ROUNDS rounds"
rounds 1 "$LATENCY_ROUNDS"
for pid in "${PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done

SCRAPE_ROUNDS=${SCRAPE_ROUNDS:-$ROUNDS}
echo "== 2c. GET /hello/bench, 1,000 more routes, $CONNS connections: with and without /metrics scraped every second, $SCRAPE_ROUNDS rounds of ${DURATION}s, order rotated"
# underscore's scrape lists every route (about 32,000 lines for 1,000 routes); actix-web-prom's
# only the routes requested so far. The scraper runs on core 1 beside wrk; the scrape itself
# runs in the server's process, pinned to core 0 with its worker.
export BENCH_ROUTES=1000 BENCH_METRICS=1
SCRAPED=("underscore" "underscore+scraped" "prom" "prom+scraped")
# binary_of LABEL: the binary of the server LABEL in SERVERS.
binary_of() {
  local label bin
  for server in "${SERVERS[@]}"; do
    read -r label bin _ <<<"$server"
    [ "$label" = "$1" ] && echo "$bin"
  done
}
PIDS=(); ADDRS=(); SCRAPERS=()
for label in "${SCRAPED[@]}"; do
  start "$(binary_of "${label%+scraped}")" "${label%+scraped}"
  PIDS+=("$PID"); ADDRS+=("$ADDR")
  if [[ $label == *+scraped ]]; then
    ( while sleep 1; do taskset -c 1 curl -s -o /dev/null --max-time 5 "http://$ADDR/metrics" || true; done ) &
    SCRAPERS+=($!)
  fi
done
unset BENCH_ROUTES BENCH_METRICS
: >"$WORK/scraped"
for round in $(seq 1 "$SCRAPE_ROUNDS"); do
  for k in "${!SCRAPED[@]}"; do
    i=$(( (k + round) % ${#SCRAPED[@]} ))
    taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "http://${ADDRS[$i]}/hello/bench" >"$WORK/wrk" 2>&1
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$WORK/wrk")
    p99=$(awk '$1 == "99%" { print $2 }' "$WORK/wrk" | us)
    echo "$round ${SCRAPED[$i]} $rps $p99" >>"$WORK/scraped"
  done
done
for pid in "${SCRAPERS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
for pid in "${PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
# scraped_ratio LABEL COLUMN: per round, LABEL+scraped's COLUMN over LABEL's.
scraped_ratio() {
  awk -v m="$1" -v c="$2" '$2 == m { a[$1] = $c } $2 == m "+scraped" { b[$1] = $c }
    END { for (r in a) if (b[r] != "") printf "%.3f\n", b[r] / a[r] }' "$WORK/scraped"
}
printf "%-20s %11s %9s   %s\n" server "median rps" "p99 (us)" "scraped/unscraped: throughput, p99: median (min..max)"
for label in "${SCRAPED[@]}"; do
  rps=$(awk -v m="$label" '$2 == m { print $3 }' "$WORK/scraped" | median)
  p99=$(awk -v m="$label" '$2 == m { print $4 }' "$WORK/scraped" | median)
  r=""
  if [[ $label == *+scraped ]]; then
    base=${label%+scraped}
    r="$(scraped_ratio "$base" 3 | median) ($(scraped_ratio "$base" 3 | minmax)), $(scraped_ratio "$base" 4 | median) ($(scraped_ratio "$base" 4 | minmax))"
  fi
  printf "%-20s %11.0f %9.1f   %s\n" "$label" "$rps" "$p99" "$r"
done

echo "-- GET /hello/bench with 1,000 more routes, one round"
export BENCH_ROUTES=1000
for server in "${SERVERS[@]}"; do
  read -r label bin mode <<<"$server"
  start "$bin" "$mode"
  taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "http://$ADDR/hello/bench" >"$WORK/wrk" 2>&1
  stop
  echo "$label: $(awk '/^Requests\/sec:/ { print $2 }' "$WORK/wrk") rps, p99 $(awk '$1 == "99%" { print $2 }' "$WORK/wrk")"
done
unset BENCH_ROUTES

echo "== 3. _cat/routes with 10,000 routes"
cargo bench -q -p underscore-core --bench cat_render 2>/dev/null
echo "== 3b. one scrape of /_prometheus/metrics with 1,000 routes"
cargo bench -q -p underscore-core --bench prometheus_scrape 2>/dev/null
echo "== 4. interrupting 1,000 in-flight requests"
cargo bench -q -p underscore-tests --bench interrupt 2>/dev/null | tail -1
echo "== 5. memory"
cargo run -q --release -p underscore-bench --bin bench-sizes
