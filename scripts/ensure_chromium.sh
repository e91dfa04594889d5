#!/usr/bin/env bash
# The browser tests drive Debian's Chromium (Playwright's own browser download
# does not work offline). Install it when we can; say clearly when we cannot.
set -u
for candidate in "${CHROMIUM_PATH:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
  if [ -n "$candidate" ] && [ -x "$candidate" ]; then
    exit 0
  fi
done
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "==> installing Debian's chromium for the browser tests"
  (apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; }) \
    && exit 0
fi
echo "Chromium was not found and could not be installed: install it (apt-get install chromium)" >&2
echo "or set CHROMIUM_PATH. The browser tests will fail without it." >&2
exit 0
