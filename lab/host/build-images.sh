#!/usr/bin/env bash
# Build the lab images locally (no registry can be reached): a Debian 12 base from debootstrap,
# then the lab image with what every lab host needs. Rebuilt only when its recipe changes.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
base=localhost/hospops-base:bookworm
lab=localhost/hospops-lab:bookworm
say() { printf '[images] %s\n' "$*"; }

if ! podman image exists "$base"; then
  say "building $base with debootstrap (about a minute)"
  root=$(mktemp -d /var/tmp/hospops-rootfs.XXXXXX)
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase \
    --include=python3,systemd,systemd-sysv,dbus,sudo,iproute2,procps,ca-certificates \
    bookworm "$root" http://deb.debian.org/debian >/dev/null
  : >"$root/etc/machine-id"
  tar -C "$root" -c . | podman import --change 'CMD=["/sbin/init"]' --change 'STOPSIGNAL=SIGRTMIN+3' \
    --change 'ENV=container=podman' - "$base" >/dev/null
fi

# The lab image is labelled with the hash of its recipe, so a changed recipe rebuilds it.
recipe="$here/Containerfile"
want=$(sha256sum "$recipe" | cut -c1-16)
have=$(podman image inspect --format '{{ index .Labels "hospops.recipe" }}' "$lab" 2>/dev/null || true)
if [ "$have" != "$want" ]; then
  say "building $lab (recipe $want)"
  podman build --quiet --label "hospops.recipe=$want" -t "$lab" -f "$recipe" "$here" >/dev/null
fi
say "ready: $(podman image inspect --format '{{.Id}}' "$lab" | cut -c1-12) $lab"
