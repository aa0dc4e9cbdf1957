#!/usr/bin/env bash
# Installs (as root) what real VMs need on a Debian node and what build.sh makes the test
# image from. Debian's qemu-utils must match qemu-system-x86: a newer preinstalled one
# (from backports) is replaced by the release's own, hence the release pin and
# --allow-downgrades.
set -euo pipefail
missing=()
codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86 "qemu-utils/$codename")
for p in seabios linux-image-amd64 busybox-static syslinux syslinux-common mtools dosfstools cpio nftables iproute2 procps; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        --allow-downgrades "${missing[@]}"
fi
