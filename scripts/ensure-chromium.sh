#!/bin/sh
# Install Debian's `chromium` for the console's browser tests, when it is missing and we
# may (root with apt-get). Never downloads browsers any other way (no `playwright install`).
# Without it the browser tests skip, saying why.
set -e
if [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium (Debian package) for the console tests..." >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
        || echo "could not install chromium; the console browser tests will be skipped" >&2
else
    echo "chromium is not installed and we are not root: the console browser tests will be skipped" >&2
fi
exit 0
