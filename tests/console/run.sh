#!/usr/bin/env bash
# The web console's end-to-end tests in headless Chromium (tests/console/console_test.py).
# Installs what they need on first use: Debian's chromium, and a venv with Playwright and
# confluent-kafka under target/console-tests. Screenshots go to target/console-tests/screenshots
# (SCREENSHOTS= to change; docs/images holds the README's copies).
set -euo pipefail
cd "$(dirname "$0")/../.."
work=target/console-tests
shots=${SCREENSHOTS:-$work/screenshots}
sudo=$([ "$(id -u)" = 0 ] || echo sudo)

if ! command -v chromium >/dev/null 2>&1; then
  echo "installing chromium (Debian package) for the console tests"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi
venv=$work/venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import playwright, confluent_kafka' 2>/dev/null; then
  mkdir -p "$work"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/console/requirements.txt
fi
cargo build --quiet --bin gregor
rm -rf "$shots"
CHROMIUM=$(command -v chromium) timeout 600 "$venv/bin/python" tests/console/console_test.py target/debug/gregor "$shots"
