#!/usr/bin/env bash
# Renders a report HTML page to a PNG screenshot with headless Chromium, to check it by eye.
# Usage: scripts/render_report.sh REPORT.html OUT.png [WIDTH,HEIGHT]
# Needs Debian's `chromium` package (apt-get install -y chromium).
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 REPORT.html OUT.png [WIDTH,HEIGHT]" >&2
    exit 2
fi
html=$1
out=$2
size=${3:-1200,2000}
[ -f "$html" ] || { echo "$html: no such file" >&2; exit 2; }
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$browser" ] || { echo "chromium not found: apt-get install -y chromium" >&2; exit 2; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
abs_html=$(cd "$(dirname "$html")" && pwd)/$(basename "$html")
abs_out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --screenshot="$abs_out" --window-size="$size" \
    "file://$abs_html" >/dev/null 2>&1 || true
[ -s "$abs_out" ] || { echo "chromium wrote no screenshot to $abs_out" >&2; exit 1; }
echo "$abs_out"
