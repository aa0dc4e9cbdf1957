#!/usr/bin/env bash
# Runs the Python client test suite (tests/clients) against the built binaries.
#
#   YUNJI_VENV     virtualenv to use/create      (default: <repo>/target/venv)
#   YUNJI_BIN_DIR  where yunji-scheduler lives   (default: <repo>/target/debug)
#
# Extra arguments go to pytest, e.g. `tests/clients/run.sh -k token -x`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${YUNJI_VENV:-$repo/target/venv}"
export YUNJI_BIN_DIR="${YUNJI_BIN_DIR:-$repo/target/debug}"

bash "$here/setup-venv.sh" "$venv" >/dev/null

if [ ! -x "$YUNJI_BIN_DIR/yunji-scheduler" ]; then
    echo "run.sh: $YUNJI_BIN_DIR/yunji-scheduler not found; run 'cargo build --bins' first" >&2
    exit 1
fi

cd "$repo"
# Keep pytest's cache and bytecode out of the source tree.
export PYTHONDONTWRITEBYTECODE=1
exec "$venv/bin/python" -m pytest -q -o cache_dir="$repo/target/pytest-cache" tests/clients "$@"
