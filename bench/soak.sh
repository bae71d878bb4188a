#!/usr/bin/env bash
# Soak: SOAK_SECONDS (600 by default) of mixed load on the quickstart, then checks that nothing
# leaked. Not run in CI.
#
#   bash bench/soak.sh                  # 10 minutes
#   SOAK_SECONDS=90 bash bench/soak.sh  # a short run while developing
#
# The quickstart (release build) is pinned to core 0; everything else to core 1:
#   - wrk -t1 -cCONNS (16) on the fast routes in turn: GET /hello/{name} (four in eight), GET /,
#     GET /plain (the plain actix route), POST /echo, and GET /nope (a 404, `unmatched`);
#   - slow requests: GET /slow?ms=100..5000, four a second;
#   - client disconnects: GET /slow?ms=1000..5000 abandoned by curl after 200 ms, two a second
#     (the handler runs on: actix-web does not cancel it, see docs/tasks.md);
#   - POST /_routes/slow/interrupt every 5 s, and POST /_tasks/{id}/_cancel of a listed
#     http:slow task every 2 s;
#   - a settings change about every second (each is followed by a second's pause), on the
#     admin socket: preempts with a percent, a limits.max_in_flight, a limits.timeout, a
#     persistent one, and their resets;
#   - a scrape of /_prometheus/metrics likewise;
#   - `underscore top --frames` polling the admin socket every second for the whole run.
# The server's RSS (VmRSS) is printed every RSS_EVERY (30) seconds. The run fails (exit 1) when:
#   - a sample after the warm-up (two minutes, or a fifth of a shorter run) is more than
#     MAX_RSS_GROWTH (10) percent above the sample taken at the end of the warm-up;
#   - a counter does not add up at the end: for every route (and unmatched bucket) of
#     /_routes/stats, requests.total = active + preempted + shed + timed_out + interrupted +
#     cancelled + dropped + responses.1xx..5xx;
#   - an http:* task is still listed SETTLE (10) seconds after the load stopped;
#   - the server or `underscore top` exits during the run.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."

SOAK_SECONDS=${SOAK_SECONDS:-600}
CONNS=${CONNS:-16}
RSS_EVERY=${RSS_EVERY:-30}
MAX_RSS_GROWTH=${MAX_RSS_GROWTH:-10}
SETTLE=${SETTLE:-10}
# Two minutes, or a fifth of a shorter run.
WARMUP=$((SOAK_SECONDS / 5 < 120 ? SOAK_SECONDS / 5 : 120))

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v jq >/dev/null || missing+=(jq)
command -v curl >/dev/null || missing+=(curl)
command -v taskset >/dev/null || missing+=(util-linux)
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cargo build --release --quiet --example quickstart
cargo build --release --quiet -p underscore-cli
SERVER=target/release/examples/quickstart
CLI=target/release/underscore

dir=$(mktemp -d)
pids=()
server=""
cleanup() {
  touch "$dir/stop"
  # The load loops first, with the curls they started (each bounded by --max-time anyway).
  for p in "${pids[@]}"; do
    pkill -P "$p" 2>/dev/null || true
    kill "$p" 2>/dev/null || true
  done
  if [ -n "$server" ]; then kill -TERM "$server" 2>/dev/null || true; fi
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SOCK=$dir/admin.sock
QUICKSTART_ADDR=127.0.0.1:0 UNDERSCORE_SOCKET=$SOCK UNDERSCORE_SETTINGS=$dir/settings.json \
  taskset -c 0 "$SERVER" >"$dir/server.out" 2>"$dir/server.err" &
server=$!
for _ in $(seq 100); do
  grep -q '^app listening on ' "$dir/server.out" 2>/dev/null && [ -S "$SOCK" ] && break
  sleep 0.1
done
ADDR=$(sed -n 's|^app listening on http://||p' "$dir/server.out" | head -1)
if [ -z "$ADDR" ] || [ ! -S "$SOCK" ]; then
  echo "the quickstart did not start" >&2
  cat "$dir/server.err" >&2
  exit 1
fi
# Everything started from here on (wrk, curl, top) runs on core 1, the server alone on core 0.
taskset -cp 1 $$ >/dev/null

# admin METHOD PATH [curl args...]: a request on the admin socket; prints the body, then the
# status on a line of its own.
admin() {
  curl -s --max-time 10 --unix-socket "$SOCK" -X "$1" "http://.$2" -w '\n%{http_code}\n' "${@:3}" || true
}
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$server/status"; }

cat >"$dir/fast.lua" <<'EOF'
-- The fast routes in turn, one request after the other on each connection.
local requests
local i = 0
init = function()
  requests = {
    wrk.format("GET", "/hello/soak"), wrk.format("GET", "/"),
    wrk.format("GET", "/hello/soak"), wrk.format("GET", "/plain"),
    wrk.format("GET", "/hello/soak"), wrk.format("POST", "/echo", nil, "soak"),
    wrk.format("GET", "/hello/soak"), wrk.format("GET", "/nope"),
  }
end
request = function()
  i = i % #requests + 1
  return requests[i]
end
EOF

# The settings changes, one a second, in this order, again and again: route and body.
SETTINGS=(
  'hello {"transient":{"preempt":{"status":503,"reason":"Soak preempt","percent":25}}}'
  'slow {"transient":{"limits":{"max_in_flight":3,"retry_after":1}}}'
  'slow {"transient":{"limits.timeout":"2s"}}'
  'echo {"transient":{"limits":{"max_in_flight":2}}}'
  'plain {"transient":{"preempt":{"status":429,"percent":50}}}'
  'index {"persistent":{"limits.timeout":"1s"}}'
  'hello {"transient":{"preempt.*":null}}'
  'slow {"transient":{"limits.max_in_flight":null}}'
  'echo {"transient":{"limits.*":null}}'
  'slow {"transient":{"limits.*":null}}'
  'plain {"transient":{"preempt.*":null}}'
  'index {"persistent":{"limits.*":null}}'
  '_all {"transient":{"preempt.*":null,"limits.*":null}}'
)

# running: true until the end of the run (or a stop asked by cleanup).
running() { [ ! -e "$dir/stop" ] && (($(date +%s) < END)); }

slow_clients() {
  while running; do
    curl -s -o /dev/null -w '%{http_code}\n' --max-time 30 \
      "http://$ADDR/slow?ms=$(((RANDOM % 50 + 1) * 100))" >>"$dir/slow.codes" || true &
    sleep 0.25
  done
  wait
}
disconnecting_clients() {
  while running; do
    curl -s -o /dev/null -w '%{http_code}\n' --max-time 0.2 \
      "http://$ADDR/slow?ms=$(((RANDOM % 41 + 10) * 100))" >>"$dir/gone.codes" || true &
    sleep 0.5
  done
  wait
}
interrupts() {
  while running; do
    sleep 5
    admin POST /_routes/slow/interrupt >"$dir/interrupt"
    if [ "$(tail -1 "$dir/interrupt")" = 200 ]; then
      head -1 "$dir/interrupt" | jq -r '.slow.interrupted' >>"$dir/interrupted"
    else
      echo "interrupt: $(tr '\n' ' ' <"$dir/interrupt")" >>"$dir/admin.errors"
    fi
  done
}
cancels() {
  local id
  while running; do
    sleep 2
    id=$(admin GET '/_tasks?actions=http:slow&detailed&group_by=none' | head -1 |
      jq -r '[.tasks[] | select(.cancelled | not)] | .[0] // empty | "\(.node):\(.id)"' 2>/dev/null || true)
    [ -n "$id" ] || continue
    # 404: the task ended between the listing and the cancel.
    admin POST "/_tasks/$id/_cancel" | tail -1 >>"$dir/cancel.codes"
  done
}
settings() {
  local n=0 route body code
  while running; do
    read -r route body <<<"${SETTINGS[n % ${#SETTINGS[@]}]}"
    code=$(admin PUT "/_routes/$route/settings" -H 'Content-Type: application/json' -d "$body" | tail -1)
    echo "$code" >>"$dir/settings.codes"
    [ "$code" = 200 ] || echo "PUT /_routes/$route/settings $body: $code" >>"$dir/admin.errors"
    n=$((n + 1))
    sleep 1
  done
}
scrapes() {
  local code
  while running; do
    code=$(curl -s --max-time 10 --unix-socket "$SOCK" -o "$dir/metrics" -w '%{http_code}' \
      'http://./_prometheus/metrics' || true)
    echo "$code $(wc -c <"$dir/metrics" 2>/dev/null || echo 0)" >>"$dir/scrape.codes"
    [ "$code" = 200 ] || echo "GET /_prometheus/metrics: $code" >>"$dir/admin.errors"
    sleep 1
  done
}

touch "$dir/slow.codes" "$dir/gone.codes" "$dir/interrupted" "$dir/cancel.codes" \
  "$dir/settings.codes" "$dir/scrape.codes" "$dir/admin.errors"
echo "== soak: ${SOAK_SECONDS}s on the quickstart (pid $server, $ADDR), server on core 0, load on core 1"
echo "   wrk -t1 -c$CONNS on the fast routes; slow requests, disconnects, interrupts, cancels,"
echo "   settings changes and a Prometheus scrape every second, underscore top --frames"
echo "   RSS every ${RSS_EVERY}s, warm-up ${WARMUP}s, fails above +${MAX_RSS_GROWTH}% of the warm-up sample"
START=$(date +%s)
END=$((START + SOAK_SECONDS))
taskset -c 1 wrk -t1 -c"$CONNS" -d"${SOAK_SECONDS}s" -s "$dir/fast.lua" "http://$ADDR" >"$dir/wrk.out" 2>&1 &
wrk=$!
pids+=("$wrk")
# Give wrk a moment, so that the plain route is known before a setting names it.
sleep 1
for loop in slow_clients disconnecting_clients interrupts cancels settings scrapes; do
  "$loop" &
  pids+=("$!")
done
# More frames than the run has seconds: it is stopped at the end, and must still be running.
"$CLI" --socket "$SOCK" top --frames $((SOAK_SECONDS * 2 + 60)) --interval 1s --size 120x40 \
  >"$dir/top.out" 2>"$dir/top.err" &
top=$!
pids+=("$top")

failures=()
samples=()
base=""
next=0
while :; do
  t=$(($(date +%s) - START))
  if ! kill -0 "$server" 2>/dev/null; then
    echo "FAIL: the server exited after ${t}s:" >&2
    tail -20 "$dir/server.err" >&2
    exit 1
  fi
  if ((t >= next)) || { [ -z "$base" ] && ((t >= WARMUP)); }; then
    kb=$(rss)
    samples+=("${t}s:${kb}kB")
    note=""
    if [ -z "$base" ] && ((t >= WARMUP)); then
      base=$kb
      note="  (warm-up sample: later ones may reach $((kb * (100 + MAX_RSS_GROWTH) / 100)) kB)"
    elif [ -n "$base" ]; then
      growth=$(awk -v a="$kb" -v b="$base" 'BEGIN { printf "%+.1f", (a - b) * 100 / b }')
      note="  ($growth% on the warm-up sample)"
      if ((kb * 100 > base * (100 + MAX_RSS_GROWTH))); then
        failures+=("RSS grew by $growth% at ${t}s: $kb kB against $base kB at the end of the warm-up")
      fi
    fi
    printf '%4ds  RSS %7d kB%s\n' "$t" "$kb" "$note"
    while ((next <= t)); do next=$((next + RSS_EVERY)); done
  fi
  ((t >= SOAK_SECONDS)) && break
  sleep 1
done
if ! kill -0 "$top" 2>/dev/null; then
  wait "$top" && status=0 || status=$?
  failures+=("underscore top exited during the run (status $status): $(tail -3 "$dir/top.err" | tr '\n' ' ')")
fi
kill "$top" 2>/dev/null || true

echo "== load stopping: waiting for wrk and the clients"
for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
# All ended and waited for: cleanup must not signal their ids again.
pids=()
stopped=$(date +%s)
echo "== waiting up to ${SETTLE}s for the http:* tasks to end"
left=""
while :; do
  tasks=$(admin GET '/_tasks?actions=http:*&detailed&group_by=none')
  if [ "$(tail -1 <<<"$tasks")" != 200 ]; then
    failures+=("GET /_tasks answered: $(tr '\n' ' ' <<<"$tasks")")
    break
  fi
  left=$(head -1 <<<"$tasks" | jq -r '.tasks[] | "\(.node):\(.id) \(.action) \(.description) running \(.running_time_in_nanos / 1e9 | floor)s cancelled=\(.cancelled)"')
  [ -z "$left" ] && break
  (($(date +%s) - stopped >= SETTLE)) && break
  sleep 1
done
drained=$(($(date +%s) - stopped))
nleft=0
if [ -n "$left" ]; then
  nleft=$(wc -l <<<"$left")
  failures+=("$nleft http:* task(s) still listed ${drained}s after the load stopped: $(tr '\n' ';' <<<"$left")")
fi

kb=$(rss)
t=$(($(date +%s) - START))
samples+=("${t}s:${kb}kB")
growth=$(awk -v a="$kb" -v b="$base" 'BEGIN { printf "%+.1f", (a - b) * 100 / b }')
printf '%4ds  RSS %7d kB  (%s%% on the warm-up sample, load stopped)\n' "$t" "$kb" "$growth"
if ((kb * 100 > base * (100 + MAX_RSS_GROWTH))); then
  failures+=("RSS grew by $growth% at ${t}s (after the load): $kb kB against $base kB at the end of the warm-up")
fi

echo "== counters (/_routes/stats): total = active + preempted + shed + timed_out + interrupted + cancelled + dropped + 1xx..5xx"
stats=$(admin GET /_routes/stats)
[ "$(tail -1 <<<"$stats")" = 200 ] || { echo "FAIL: GET /_routes/stats answered: $stats" >&2; exit 1; }
head -1 <<<"$stats" | jq -r '
  ((.routes // {}) | to_entries[]), ((.unmatched // {}) | to_entries[] | .key |= "unmatched." + .)
  | .value as $s | $s.requests as $q | $s.responses as $r
  | ($q.active + $q.preempted + $q.shed + $q.timed_out + $q.interrupted + $q.cancelled + $q.dropped
     + $r["1xx"] + $r["2xx"] + $r["3xx"] + $r["4xx"] + $r["5xx"]) as $sum
  | [.key, $q.total, $sum, $q.active, $q.preempted, $q.shed, $q.timed_out, $q.interrupted,
     $q.cancelled, $q.dropped, $r["1xx"], $r["2xx"], $r["3xx"], $r["4xx"], $r["5xx"]] | @tsv' >"$dir/counters"
printf '%-14s %10s %10s %6s %9s %6s %9s %11s %9s %7s %4s %10s %4s %8s %8s\n' route total sum active \
  preempted shed timed_out interrupted cancelled dropped 1xx 2xx 3xx 4xx 5xx
checked=0
while IFS=$'\t' read -r route total sum rest; do
  # shellcheck disable=SC2086 # the remaining columns, split on purpose
  printf '%-14s %10d %10d %6d %9d %6d %9d %11d %9d %7d %4d %10d %4d %8d %8d\n' "$route" "$total" "$sum" $rest
  checked=$((checked + 1))
  [ "$total" = "$sum" ] || failures+=("$route: requests.total is $total but its outcomes add up to $sum")
done <"$dir/counters"

wrk_requests=$(awk '/ requests in / { print $1 }' "$dir/wrk.out")
wrk_rps=$(awk '/^Requests\/sec:/ { print $2 }' "$dir/wrk.out")
wrk_non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$dir/wrk.out")
wrk_errors=$(sed -n 's/^ *Socket errors: //p' "$dir/wrk.out")
codes() { sort "$1" | uniq -c | awk '{ printf "%s%s x%s", (NR > 1 ? ", " : ""), $2, $1 }'; }
echo "== summary"
echo "duration:        ${SOAK_SECONDS}s of load (warm-up ${WARMUP}s), tasks drained ${drained}s after it"
echo "wrk:             ${wrk_requests:-?} requests, ${wrk_rps:-?} req/s, non-2xx/3xx ${wrk_non2xx:-0}, socket errors: ${wrk_errors:-none}"
echo "slow requests:   $(wc -l <"$dir/slow.codes") ($(codes "$dir/slow.codes"))"
echo "disconnects:     $(wc -l <"$dir/gone.codes") ($(codes "$dir/gone.codes"); 000: abandoned by the client)"
# What the interrupt and cancel answers said, against the outcomes counted. They may differ by a
# few: an answer counts the tasks it flagged, and a flagged request can still end otherwise (its
# timeout seen first, or its body still being sent after its handler answered).
slow_outcome() { awk -F'\t' -v c="$1" '$1 == "slow" { print $c }' "$dir/counters"; }
echo "interrupts:      $(wc -l <"$dir/interrupted") calls, $(awk '{ s += $1 } END { print s + 0 }' "$dir/interrupted") requests interrupted by their answers ($(slow_outcome 8) counted interrupted)"
echo "cancels:         $(wc -l <"$dir/cancel.codes") ($(codes "$dir/cancel.codes"); 404: ended before the cancel; $(slow_outcome 9) counted cancelled)"
echo "settings PUTs:   $(wc -l <"$dir/settings.codes") ($(codes "$dir/settings.codes"))"
echo "scrapes:         $(wc -l <"$dir/scrape.codes") ($(cut -d' ' -f1 "$dir/scrape.codes" | sort | uniq -c | awk '{ printf "%s%s x%s", (NR > 1 ? ", " : ""), $2, $1 }'), last $(tail -1 "$dir/scrape.codes" | cut -d' ' -f2) bytes)"
echo "top frames:      $(grep -c '^ underscore top ' "$dir/top.out" || true) ($(grep -c 'disconnected\|failed' "$dir/top.out" || true) lines saying disconnected or failed)"
echo "admin errors:    $(wc -l <"$dir/admin.errors")$( [ -s "$dir/admin.errors" ] && echo ": $(head -3 "$dir/admin.errors" | tr '\n' ';')")"
echo "RSS samples:     ${samples[*]}"
echo "counters:        $checked routes and unmatched buckets checked"
echo "tasks left:      $nleft"
if ((${#failures[@]})); then
  for f in "${failures[@]}"; do echo "FAIL: $f" >&2; done
  exit 1
fi
echo "PASS"
