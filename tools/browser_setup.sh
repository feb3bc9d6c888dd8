#!/bin/sh
# Chromium for the member console's browser tests (tests/browser/): Debian's `chromium` package, driven by Playwright
# (a dev dependency) through its executable path. Playwright's own browser download is not used.
#
# Run by `make test` (target `browser`). Quick and silent when a browser is already there: $APIHUB_CHROMIUM if set,
# else /usr/bin/chromium. Otherwise it installs Debian's package: as root directly, else through sudo when there is
# one; else it prints what to run. In CI (CI=true) a browser it cannot install is an error, since the browser tests
# must run there; elsewhere they are skipped with a message naming this command.
set -u

if [ -n "${APIHUB_CHROMIUM:-}" ]; then
    if [ -x "$APIHUB_CHROMIUM" ]; then
        exit 0
    fi
    echo "browser setup: APIHUB_CHROMIUM=$APIHUB_CHROMIUM is not an executable file" >&2
    if [ "${CI:-}" = true ]; then
        exit 1
    fi
    echo "browser setup: the browser tests (tests/browser/) will be skipped" >&2
    exit 0
fi
if [ -x /usr/bin/chromium ]; then
    exit 0
fi

install="apt-get update && apt-get install -y --no-install-recommends chromium"
if [ "$(id -u)" = 0 ]; then
    run=""
elif command -v sudo >/dev/null 2>&1; then
    run="sudo"
else
    run="none"
fi

if [ "$run" != none ] && command -v apt-get >/dev/null 2>&1; then
    echo "browser setup: installing Debian's chromium for the console's browser tests ($install)"
    # Quiet on success (apt prints several hundred lines); its output is shown when it fails.
    log=$(mktemp)
    if $run env DEBIAN_FRONTEND=noninteractive sh -c "$install" >"$log" 2>&1 && [ -x /usr/bin/chromium ]; then
        rm -f "$log"
        echo "browser setup: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium) installed"
        exit 0
    fi
    tail -n 40 "$log" >&2
    rm -f "$log"
    echo "browser setup: could not install chromium" >&2
else
    echo "browser setup: no Chromium for the console's browser tests (/usr/bin/chromium), and this user cannot" >&2
    echo "install it: run as root  $install  (or set APIHUB_CHROMIUM to a Chromium binary)" >&2
fi

if [ "${CI:-}" = true ]; then
    exit 1
fi
echo "browser setup: the browser tests (tests/browser/) will be skipped" >&2
exit 0
