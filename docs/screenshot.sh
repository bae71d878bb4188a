#!/usr/bin/env bash
# Regenerates docs/dashboard.png: the dashboard's `screenshot` browser test (two quickstarts
# behind `underscore ui`, some traffic, a preempted share of /hello, a limit on /slow, three
# slow requests and one's stack) run in headless Chromium with DASHBOARD_SCREENSHOT set.
#
#   bash docs/screenshot.sh        # needs chromium and chromium-driver (apt-get install -y ...)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_INCREMENTAL=0
DASHBOARD_SCREENSHOT="$PWD/docs/dashboard.png" \
  cargo test -p underscore-cli --test dashboard -- --exact screenshot --nocapture
ls -l docs/dashboard.png
