#!/usr/bin/env bash
# Prepare this machine (the control node) to run the lab: packages, the two podman host fixes
# measured in shared/LAB.md, and the local base + lab images. Safe to run again: every step
# checks first and does nothing when its work is already done.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
say() { printf '[host] %s\n' "$*"; }

# Real package names only: a virtual one (postgresql-contrib-15, whose modules ship in postgresql-15)
# never shows as installed, which would run apt-get on every call.
need_pkgs=(podman crun debootstrap uidmap openssh-client python3-psycopg2 postgresql-15 pgbackrest
           nginx-light fonts-noto-cjk poppler-utils libpango-1.0-0 libpangoft2-1.0-0)
missing=()
for p in "${need_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The packaged PostgreSQL/nginx services are not used on the control node; tests start their own.
  systemctl disable --now postgresql nginx >/dev/null 2>&1 || true
fi

# Fix 1: podman's default nofile/nproc ulimits exceed the hard limit root has here.
hard=$(ulimit -Hn)
conf=/etc/containers/containers.conf.d/50-hospops-ulimits.conf
if [ "$hard" != unlimited ] && [ "$hard" -lt 1048576 ]; then
  want=$(( hard < 16384 ? hard : 16384 ))
  body=$(printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n' "$want" "$want" "$want" "$want")
  if [ ! -f "$conf" ] || [ "$(cat "$conf")" != "$body" ]; then
    say "lowering podman default ulimits to $want (hard limit $hard)"
    mkdir -p "$(dirname "$conf")"; printf '%s\n' "$body" >"$conf"
  fi
fi

# Fix 2: cgroup v1 host with controllers left on the v2 'unified' mount: crun refuses hybrid mode.
# Mount each such controller as a v1 hierarchy of its own (lasts until reboot, so checked every run).
uni=/sys/fs/cgroup/unified/cgroup.controllers
if [ -f "$uni" ]; then
  for c in $(cat "$uni"); do
    if ! mountpoint -q "/sys/fs/cgroup/$c"; then
      say "mounting cgroup v1 controller $c"
      mkdir -p "/sys/fs/cgroup/$c" && mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c"
    fi
  done
fi

"$here/build-images.sh"
