#!/usr/bin/env bash
# Makes (or refreshes) the virtualenv with the OpenStack clients and pytest, pinned in
# requirements.txt; installs only when requirements.txt changed since the last time.
#
#   setup-venv.sh [VENV]    (default: $YUNJI_VENV, else <repo>/target/venv)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${1:-${YUNJI_VENV:-$repo/target/venv}}"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
req="$here/requirements.txt"
stamp="$venv/.yunji-tests-clients-requirements.sha256"
sum="$(sha256sum "$req" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$sum" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
    printf '%s\n' "$sum" >"$stamp"
fi
echo "$venv"
