#!/usr/bin/env bash
# Build the kernel-test guest image into OUT: vmlinuz, initrd.img, root.img (ext4, sparse).
# Debian's stock kernel (linux-image-amd64), docker.io and the project's Python deps (from PyPI, in a chroot).
# Usage: build-image.sh OUT MIRROR REQUIREMENTS_FILE PACKAGES(comma-separated)
# Called by `python -m lab.guest` when no cached image matches the hash of its inputs.
set -euo pipefail
out=$1 mirror=$2 reqs=$3 packages=$4
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "$out.build.XXXXXX")
rootfs=$work/rootfs
cleanup() {
  for m in proc sys dev; do umount -l "$rootfs/$m" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
log() { printf 'guest-image: %s\n' "$*" >&2; }

log "debootstrap bookworm with $packages"
debootstrap --variant=minbase --include="$packages" bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }

# Wheels come from PyPI through this host's own pip (its index and CA settings); the rootfs installs them
# offline, so the guest image never needs this host's network configuration.
log "pip wheel on the host, pip install --no-index in the rootfs"
"${PYTHON:-python3}" -m pip wheel -q -w "$rootfs/tmp/wheels" -r "$reqs"
cp "$reqs" "$rootfs/tmp/requirements.txt"
mount -t proc proc "$rootfs/proc"
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin chroot "$rootfs" python3 -m pip install -q --no-index --find-links /tmp/wheels --break-system-packages \
  -r /tmp/requirements.txt
umount "$rootfs/proc"
rm -rf "$rootfs/tmp/wheels"

log "init, apt sources, cleanup"
install -m 0755 "$here/init" "$rootfs/sbin/lab-guest-init"
cp -a /etc/apt/sources.list /etc/apt/sources.list.d "$rootfs/etc/apt/" 2>/dev/null || true
echo lab-guest >"$rootfs/etc/hostname"
rm -rf "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/var/lib/apt/lists/"*_* "$rootfs/tmp/requirements.txt"
cp "$rootfs"/boot/vmlinuz-* "$work/vmlinuz"
cp "$rootfs"/boot/initrd.img-* "$work/initrd.img"

log "mkfs.ext4 -d (sparse 6 GiB image; Docker's data has a disk of its own)"
truncate -s 6G "$work/root.img"
mkfs.ext4 -q -F -L labroot -d "$rootfs" "$work/root.img"
mkdir -p "$out"
mv "$work/vmlinuz" "$work/initrd.img" "$work/root.img" "$out/"
log "done: $(du -sh "$out" | cut -f1) in $out"
