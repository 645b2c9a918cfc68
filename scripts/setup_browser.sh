#!/usr/bin/env bash
# Headless Chromium for the live-view test (test/ros/test_web_view.py): Debian's `chromium` from
# apt. Idempotent; where apt is absent or we may not use it, says so and leaves the test to skip.
set -eo pipefail
for name in chromium chromium-browser google-chrome; do
  if command -v "$name" >/dev/null 2>&1; then
    echo "[setup_browser] $name present: $("$name" --version 2>/dev/null | head -1)"
    exit 0
  fi
done
if ! command -v apt-get >/dev/null 2>&1; then
  echo "[setup_browser] no apt-get here: the browser test will skip (install chromium to run it)"
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if sudo -n true 2>/dev/null; then sudo="sudo -n"; else
    echo "[setup_browser] not root and no password-less sudo: the browser test will skip (apt-get install chromium)"
    exit 0
  fi
fi
echo "[setup_browser] apt-get install chromium"
$sudo apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >/dev/null
chromium --version
