#!/usr/bin/env bash
# The whole test suite, on a fresh machine of this kind: installs what it needs, then
# runs formatting, lints, unit and integration tests, the systemd unit checks and the
# real OpenStack clients against a running scheduler. Ends with "N passed, M failed"
# over its stages and exits non-zero if any stage failed.
set -uo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=never
export YUNJI_BIN_DIR="$PWD/target/debug"
# One clean build: incremental state would only double what lands on a shared disk.
export CARGO_INCREMENTAL=0

passed=0
failed=0
failures=()
# The disk is shared with other work; each stage says what the build holds and what is left.
disk_report() {
    local built
    built=$(du -sh target 2>/dev/null | cut -f1)
    echo "target ${built:-empty}, $(df -h --output=avail . | tail -1 | tr -d ' ') free"
}
stage() {
    local name=$1
    shift
    echo "=== $name"
    local started=$SECONDS
    if "$@"; then
        passed=$((passed + 1))
        echo "=== $name: ok ($((SECONDS - started)) s; $(disk_report))"
    else
        failed=$((failed + 1))
        failures+=("$name")
        echo "=== $name: FAILED ($((SECONDS - started)) s; $(disk_report))"
    fi
}

install_packages() {
    # Debian packages the suite needs; present on most machines already.
    local missing=()
    command -v systemd-analyze >/dev/null || missing+=(systemd)
    python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
    # The conformance report is checked as Chromium renders it (with a CJK font).
    command -v chromium >/dev/null || missing+=(chromium)
    fc-list 2>/dev/null | grep -qi "wenquanyi\|noto sans cjk" || missing+=(fonts-wqy-microhei)
    if [ ${#missing[@]} -gt 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    fi
    # Real VMs: QEMU and what the test image is made from.
    bash tests/image/install-packages.sh
}

stage "packages" install_packages
stage "cargo fmt --check" cargo fmt --all --check
stage "cargo clippy" cargo clippy --workspace --all-targets --locked -- -D warnings
stage "cargo build" cargo build --workspace --bins --locked
stage "cargo test" cargo test --workspace --locked
# The HTML conformance report in headless Chromium: the DOM and a screenshot.
stage "conformance report (Chromium)" cargo test --workspace --locked --test report_page -- --ignored
# The node datapath for real: bridges and VXLAN over netlink, DHCP, nftables, each test
# in network namespaces of its own (root). `--workspace` keeps the feature set of the
# builds above, so nothing is compiled twice.
stage "privileged datapath (namespaces)" cargo test --workspace --locked \
    --test net_links --test net_dhcp --test net_firewall --test net_driver --test net_router --test net_balancer -- --ignored --test-threads=1
# Real VMs under TCG (root and QEMU); one at a time on these two cores.
stage "end-to-end (real VMs)" cargo test --workspace --test e2e --locked -- --ignored --test-threads=1
stage "systemd units" bash tests/systemd/verify.sh
stage "openstack clients" bash tests/clients/run.sh

echo
if [ $failed -gt 0 ]; then
    echo "failed stages: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
