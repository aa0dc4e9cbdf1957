#!/usr/bin/env bash
# Checks the systemd units in systemd/ with `systemd-analyze verify`.
#
# verify fails when ExecStart's binary does not exist, so each unit is copied into a
# temporary directory with /usr/local/bin/ rewritten to the built binaries'
# directory, and the copy is verified. A unit fails on any line of output that
# mentions it (verify prints most problems as warnings and still exits 0); lines
# about other units on this machine are shown but do not count.
#
#   YUNJI_BIN_DIR  where yunji-scheduler and yunji-agent are (default: target/debug,
#                  built with `cargo build --bins` when missing)
#
# Prints "N passed, M failed" last; exits non-zero when any unit failed.

set -u -o pipefail

root=$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel) || exit 2
units=(yunji-scheduler yunji-agent)
bin_dir=${YUNJI_BIN_DIR:-$root/target/debug}

if ! command -v systemd-analyze >/dev/null; then
    echo "systemd-analyze is not installed" >&2
    exit 2
fi

missing=0
for unit in "${units[@]}"; do
    [[ -x $bin_dir/$unit ]] || missing=1
done
if ((missing)); then
    if [[ -n ${YUNJI_BIN_DIR:-} ]]; then
        echo "YUNJI_BIN_DIR=$bin_dir lacks yunji-scheduler or yunji-agent" >&2
        exit 2
    fi
    echo "building the binaries (cargo build --bins)"
    (cd "$root" && cargo build --bins --quiet) || exit 2
fi
bin_dir=$(cd "$bin_dir" && pwd)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Copies systemd/NAME.service into $tmp/$2/ with the binaries' paths rewritten.
stage() {
    local unit=$1 dir=$tmp/$2
    mkdir -p "$dir"
    sed "s#/usr/local/bin/#$bin_dir/#g" "$root/systemd/$unit.service" >"$dir/$unit.service"
    echo "$dir/$unit.service"
}

# Verifies one staged unit file; prints the lines about it; fails if there are any.
check() {
    local file=$1 name output rc about
    name=$(basename "$file")
    output=$(systemd-analyze verify "$file" 2>&1)
    rc=$?
    about=$(grep -F -- "$name" <<<"$output")
    if [[ -n $about ]]; then
        printf '%s\n' "$about" | sed 's/^/    /'
        return 1
    fi
    if ((rc != 0)); then
        echo "    note: systemd-analyze exited $rc about other units:"
        printf '%s\n' "$output" | sed 's/^/      /'
    fi
    return 0
}

# A canary: a copy with a misspelt key must fail, or this script checks nothing.
canary=$(stage yunji-agent canary)
sed -i 's/^\[Service\]$/[Service]\nNoSuchKeyInSystemd=yes/' "$canary"
if check "$canary" >/dev/null; then
    echo "canary: a unit with an unknown key passed; systemd-analyze verify output is not understood" >&2
    exit 2
fi

passed=0
failed=0
for unit in "${units[@]}"; do
    file=$(stage "$unit" units)
    if grep -q '/usr/local/bin/' "$file" || ! grep -q "^ExecStart=$bin_dir/$unit " "$file"; then
        echo "FAIL $unit.service: ExecStart does not run /usr/local/bin/$unit"
        failed=$((failed + 1))
        continue
    fi
    if check "$file"; then
        # For information only: systemd's exposure score (lower is tighter).
        exposure=$(systemd-analyze security --offline=yes "$file" 2>/dev/null |
            sed -n "s/.*Overall exposure level for [^:]*: \([0-9.]* [A-Z]*\).*/exposure \1/p")
        echo "ok   $unit.service${exposure:+ (systemd-analyze security: $exposure)}"
        passed=$((passed + 1))
    else
        echo "FAIL $unit.service"
        failed=$((failed + 1))
    fi
done

echo "$passed passed, $failed failed"
((failed == 0))
