#!/usr/bin/env bash
# Builds yunji's test image: a ~10 MB bootable qcow2 made from Debian packages only and
# without mounting anything. SeaBIOS boots it from a virtio disk (syslinux on a FAT
# superfloppy); a busybox initramfs loads the virtio modules, reads the config drive
# (vfat, label config-2), runs user_data when it is a script, brings every NIC up with
# DHCP (with the MTU it offers), serves its hostname and instance id over HTTP on port 80,
# has nc and ping for user_data probes, and prints markers on the serial console:
#
#   YUNJI-BOOT-OK hostname=H uuid=U uptime=S   user space is up (the first marker)
#   YUNJI-RESOURCES cpus=N mem_kb=M            what the VM sees (resize tests)
#   YUNJI-USERDATA-BEGIN / -END exit=N          around the user_data script's output
#   YUNJI-TICK N                                every second (live migration tests)
#   YUNJI-POWER-BUTTON                          ACPI power button: powering off
#
# Output is cached by content (this script and the kernel's version) in
# ${YUNJI_IMAGE_CACHE:-/var/cache/yunji/test-image}; the path of the image is printed on
# stdout. Installs the Debian packages it needs when they are missing (as root, with
# install-packages.sh).
set -euo pipefail

cache=${YUNJI_IMAGE_CACHE:-/var/cache/yunji/test-image}
# What the image is made from (and QEMU); stdout carries only the image's path.
bash "$(dirname "$0")/install-packages.sh" >&2

kernel=$(ls /boot/vmlinuz-* | sort -V | tail -n1)
kver=${kernel#/boot/vmlinuz-}
modules=/lib/modules/$kver/kernel
key=$( { cat "$0"; echo "$kver"; } | sha256sum | cut -c1-16)
image=$cache/yunji-test-$key.qcow2
if [ -s "$image" ]; then
    echo "$image"
    exit 0
fi

mkdir -p "$cache"
work=$(mktemp -d "$cache/.build-XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/initramfs
mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,mnt/config,www,modules,usr/share/udhcpc}
cp /bin/busybox "$root/bin/busybox"
for applet in sh mount umount insmod mkdir cat echo sed grep ls ip udhcpc httpd hostname \
    sleep poweroff reboot sync findfs blkid nproc head tr cut awk dd route date seq nc ping; do
    ln -s busybox "$root/bin/$applet"
done
# Dependency order: each module's dependencies come before it.
order=(drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_legacy_dev
    drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci net/core/failover
    drivers/net/net_failover drivers/net/virtio_net drivers/block/virtio_blk fs/fat/fat
    fs/fat/vfat fs/nls/nls_cp437 fs/nls/nls_ascii drivers/acpi/button drivers/input/evdev)
: >"$root/modules/order"
for m in "${order[@]}"; do
    src=$modules/$m.ko
    [ -f "$src" ] || src=$(ls "$src".* 2>/dev/null | head -n1)
    [ -f "$src" ] || { echo "build.sh: module $m missing in $modules" >&2; exit 1; }
    case $src in
        *.xz) xz -dc "$src" >"$root/modules/${m##*/}.ko" ;;
        *.zst) zstd -qdc "$src" >"$root/modules/${m##*/}.ko" ;;
        *) cp "$src" "$root/modules/${m##*/}.ko" ;;
    esac
    echo "${m##*/}" >>"$root/modules/order"
done

cat >"$root/usr/share/udhcpc/default.script" <<'DHCP'
#!/bin/sh
case "$1" in
    bound|renew)
        ip addr flush dev "$interface"
        ip addr add "$ip/${mask:-24}" dev "$interface"
        [ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
        [ -n "$router" ] && ip route add default via "${router%% *}" dev "$interface"
        echo "YUNJI-DHCP interface=$interface ip=$ip" >/dev/console ;;
esac
exit 0
DHCP
chmod 755 "$root/usr/share/udhcpc/default.script"

cat >"$root/init" <<'INIT'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec >/dev/console 2>&1
for m in $(cat /modules/order); do insmod "/modules/$m.ko" 2>/dev/null; done

# The ACPI power button (stop, soft reboot): any event from it powers the VM off.
# Watched before the first marker, so a press right after it is not lost.
for ev in /sys/class/input/event*; do
    if grep -q "Power Button" "$ev/device/name" 2>/dev/null; then
        # evdev reads whole events (24 bytes on x86_64) or fails; devtmpfs may not
        # have made the node yet, so retry until a read succeeds.
        (until dd if="/dev/input/${ev##*/}" bs=24 count=1 >/dev/null 2>&1; do sleep 0.2; done
         echo "YUNJI-POWER-BUTTON"; sync; poweroff -f) &
    fi
done

uuid=none; name=none; host=yunji-vm
if [ -e /dev/disk/by-label/config-2 ] || findfs LABEL=config-2 >/dev/null 2>&1; then
    dev=$(findfs LABEL=config-2)
    if mount -t vfat -o ro "$dev" /mnt/config; then
        meta=/mnt/config/openstack/latest/meta_data.json
        field() { sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p" "$meta" | head -n1; }
        if [ -f "$meta" ]; then
            uuid=$(field uuid); name=$(field name); host=$(field hostname)
        fi
    fi
fi
hostname "$host"
up=$(cut -d' ' -f1 /proc/uptime)
echo "YUNJI-BOOT-OK hostname=$host uuid=$uuid name=$name uptime=$up"
echo "YUNJI-RESOURCES cpus=$(nproc) mem_kb=$(sed -n 's/^MemTotal: *\([0-9]*\).*/\1/p' /proc/meminfo)"

ud=/mnt/config/openstack/latest/user_data
if [ -f "$ud" ] && [ "$(head -c 2 "$ud")" = '#!' ]; then
    cp "$ud" /tmp/user_data && chmod 700 /tmp/user_data
    echo "YUNJI-USERDATA-BEGIN"
    /tmp/user_data; rc=$?
    echo "YUNJI-USERDATA-END exit=$rc"
fi

ip link set lo up
for nic in /sys/class/net/*; do
    n=${nic##*/}
    [ "$n" = lo ] && continue
    ip link set "$n" up
    udhcpc -i "$n" -b -t 5 -s /usr/share/udhcpc/default.script >/dev/null 2>&1
done
printf 'hostname=%s\nuuid=%s\n' "$host" "$uuid" >/www/index.html
httpd -p 80 -h /www

n=0
while true; do
    n=$((n + 1))
    echo "YUNJI-TICK $n"
    sleep 1
done
INIT
chmod 755 "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -9) >"$work/initrd.gz"

# A FAT superfloppy holding syslinux, the kernel and the initramfs.
kb=$(( ( $(stat -c %s "$kernel") + $(stat -c %s "$work/initrd.gz") ) / 1024 + 1024 ))
mkfs.vfat -C -n YUNJI-TEST "$work/disk.raw" "$kb" >/dev/null
cat >"$work/syslinux.cfg" <<'CFG'
DEFAULT linux
TIMEOUT 0
PROMPT 0
LABEL linux
  KERNEL vmlinuz
  APPEND initrd=initrd.gz console=ttyS0 quiet loglevel=3 panic=-1
CFG
export MTOOLS_SKIP_CHECK=1
mcopy -i "$work/disk.raw" "$kernel" ::vmlinuz
mcopy -i "$work/disk.raw" "$work/initrd.gz" ::initrd.gz
mcopy -i "$work/disk.raw" "$work/syslinux.cfg" ::syslinux.cfg
syslinux --install "$work/disk.raw"
qemu-img convert -q -c -f raw -O qcow2 "$work/disk.raw" "$work/image.qcow2"
mv "$work/image.qcow2" "$image"
# Images of older versions of this script are of no further use.
find "$cache" -maxdepth 1 -name 'yunji-test-*.qcow2' ! -name "${image##*/}" -delete
echo "$image"
