#!/usr/bin/env bash
# Re-takes the console examples of the README and the guide from a real quickstart, so that the
# output they show stays true. Not run by CI (it needs 127.0.0.1:8080 and /tmp/underscore.sock
# free, and takes a minute); run it after a change that alters what the quickstart answers, and
# review the diff:
#
#     bash docs/regen.sh            # every page
#     bash docs/regen.sh docs/tasks.md
#
# A regenerated example sits between two HTML comments, which a Markdown renderer hides:
#
#     <!-- regen
#     for i in 1 2 3; do curl -s 'localhost:8080/slow?ms=5000' >/dev/null & done; sleep 0.5
#     show "GET '_cat/tasks?v'"
#     -->
#     ```console
#     (rewritten)
#     ```
#     <!-- /regen -->
#
# The lines of the first comment are a bash script, run against a quickstart started afresh for
# that block (the app on 127.0.0.1:8080, the admin APIs on /tmp/underscore.sock, a settings file
# in a temp dir). Only what its helpers print goes into the block:
#
# - `show 'CMD'` prints `$ CMD` (continuation lines with `> `), runs CMD, and prints its output;
#   what background jobs print appears when it arrives, before the next `$` line, as in a
#   terminal;
# - `output 'CMD'` prints CMD's output alone (for a `text` block such as a `top` frame);
# - `log PATTERN` prints the quickstart's stderr lines that match PATTERN (grep -E).
#
# Never `wait` without a job id in a block: the quickstart is a job of the same shell.
#
# `GET`, `PUT` and `POST` are the guide's shell functions (docs/setup.md, "Using it"), and
# `underscore` is the CLI built from this checkout. Display filters: carriage returns and the
# `date` and `x-served-by` headers are dropped, and the Cargo registry's path is shortened to
# `.../`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

export CARGO_INCREMENTAL=0
cargo build -q --example quickstart -p underscore-examples
cargo build -q -p underscore-cli --bin underscore
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

if curl -s --max-time 1 -o /dev/null 127.0.0.1:8080 || [ -S /tmp/underscore.sock ]; then
  echo "regen: 127.0.0.1:8080 or /tmp/underscore.sock is in use: stop what runs there first" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The harness one block runs in: a fresh quickstart, the helpers, the block's script, then the
# quickstart stopped and every background job ended.
cat >"$work/harness.sh" <<'HARNESS'
set -uo pipefail
cd "$ROOT"
exec 3>"$RESULT"
export PATH="$TARGET/debug:$PATH"
# curl prints no progress meter, as on a terminal (where the examples were typed).
printf 'silent\nshow-error\n' >"$WORK/.curlrc"
export CURL_HOME="$WORK"
SOCK=/tmp/underscore.sock
function GET()  { curl -s --unix-socket "$SOCK" "http://./${1#/}" "${@:2}"; }
function POST() { GET "$@" -X POST -H 'Content-Type: application/json'; }
function PUT()  { GET "$@" -X PUT -H 'Content-Type: application/json'; }

UNDERSCORE_SETTINGS="$WORK/settings.json" RUST_LOG=info QUICKSTART_ADDR=127.0.0.1:8080 \
  "$TARGET/debug/examples/quickstart" >"$WORK/qs.out" 2>"$WORK/qs.err" &
qs=$!
for _ in $(seq 100); do
  GET _cat >/dev/null 2>&1 && break
  sleep 0.1
done
GET _cat >/dev/null || { echo "regen: the quickstart did not start" >&2; cat "$WORK/qs.err" >&2; exit 1; }

# Everything a shown command prints, its background jobs included, lands in $BG; `flush` copies
# what arrived since the last flush into the block, through the display filters.
BG="$WORK/bg"
: >"$BG"
flushed=0
function flush() {
  sleep 0.2
  local size
  size=$(stat -c %s "$BG")
  if ((size > flushed)); then
    emit "$(tail -c +"$((flushed + 1))" "$BG" | head -c "$((size - flushed))" | filter)"
    flushed=$size
  fi
}
# Prints its argument as whole lines (an answer without a final newline still ends its line).
function emit() {
  [ -z "$1" ] || printf '%s\n' "$1" >&3
}
function filter() {
  sed -E -e 's/\r$//' -e '/^(date|x-served-by): /Id' \
    -e "s#$HOME/\\.cargo/registry/src/[^/]+/#.../#g" -e "s#$ROOT/##g"
}
function show() {
  flush
  printf '%s\n' "$1" | sed -e '1s/^/$ /' -e '2,$s/^/> /' >&3
  eval "$1" >>"$BG" 2>&1
  flush
}
function output() {
  emit "$(eval "$1" 2>&1 | filter)"
}
function log() {
  sleep 0.2
  emit "$(grep -E "$1" "$WORK/qs.err" | filter)"
}

source "$BLOCK" >/dev/null 2>&1
# The block's background jobs get 30 s to end (a loop the block left running is then killed).
for _ in $(seq 300); do
  [ -z "$(jobs -pr | grep -vx "$qs")" ] && break
  sleep 0.1
done
for pid in $(jobs -pr | grep -vx "$qs"); do kill "$pid" 2>/dev/null; done
flush
kill -TERM "$qs" 2>/dev/null
wait "$qs" 2>/dev/null || true
HARNESS

export ROOT="$root" TARGET="$target" WORK="$work"
python3 - "$@" <<'PY'
import glob, os, re, subprocess, sys

root, work = os.environ["ROOT"], os.environ["WORK"]
pages = sys.argv[1:] or ["README.md"] + sorted(glob.glob("docs/*.md"))
start = re.compile(r"^<!-- regen\s*$")
for page in pages:
    lines = open(page).read().split("\n")
    out, i, count = [], 0, 0
    while i < len(lines):
        if not start.match(lines[i]):
            out.append(lines[i])
            i += 1
            continue
        end = lines.index("-->", i)
        script = "\n".join(lines[i + 1 : end]) + "\n"
        fence = end + 1
        assert lines[fence].startswith("```"), f"{page}:{fence + 1}: a code block follows the regen comment"
        close = lines.index("```", fence + 1)
        assert lines[close + 1] == "<!-- /regen -->", f"{page}:{close + 2}: <!-- /regen --> closes the block"
        block = os.path.join(work, "block.sh")
        open(block, "w").write(script)
        result = os.path.join(work, "result")
        subprocess.run(
            ["bash", os.path.join(work, "harness.sh")],
            env={**os.environ, "BLOCK": block, "RESULT": result},
            stdin=subprocess.DEVNULL,
            check=True,
        )
        text = open(result).read().rstrip("\n")
        out += lines[i : fence + 1] + text.split("\n") + lines[close : close + 2]
        i = close + 2
        count += 1
    open(page, "w").write("\n".join(out))
    if count:
        print(f"{page}: {count} example(s) re-taken")
PY
