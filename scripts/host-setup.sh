#!/usr/bin/env bash
# Prepare a Debian 12 host for the lab: packages via apt, then a running dockerd.
# Idempotent and non-interactive; works without systemd (nothing starts services for us).
set -euo pipefail

log() { printf 'host-setup: %s\n' "$*"; }
die() { printf 'host-setup: ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root"

# package -> a command it provides (checked before touching apt, so a warm run is quick)
declare -A wanted=(
  [docker.io]=dockerd [debootstrap]=debootstrap [tshark]=tshark
  [iproute2]=ip [ethtool]=ethtool [nftables]=nft [tcpdump]=tcpdump [util-linux]=nsenter
  [chromium]=chromium [chromium-driver]=chromedriver  # `lab ui`'s browser tests (tests/integration/test_ui.py)
)
missing=()
for pkg in "${!wanted[@]}"; do
  command -v "${wanted[$pkg]}" >/dev/null 2>&1 || missing+=("$pkg")
done
# Debian's own python3 and its venv module (the Makefile's .venv: PEP 668 forbids pip outside one).
# Checked by path: another python3 earlier on PATH (pyenv, conda) does not count.
[ -x /usr/bin/python3 ] || missing+=(python3)
/usr/bin/python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)

if [ "${#missing[@]}" -gt 0 ]; then
  log "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1
  # tshark otherwise asks whether non-root users may capture
  echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "packages present"
fi

if docker info >/dev/null 2>&1; then
  log "dockerd running"
  exit 0
fi

log "starting dockerd (log: /var/log/dockerd.log)"
# own session: a Ctrl-C in the calling terminal (make) must not stop the daemon
setsid dockerd </dev/null >>/var/log/dockerd.log 2>&1 &
for _ in $(seq 1 30); do
  if docker info >/dev/null 2>&1; then
    log "dockerd ready"
    exit 0
  fi
  sleep 1
done
tail -n 20 /var/log/dockerd.log >&2 || true
die "dockerd did not answer 'docker info' within 30 s; see /var/log/dockerd.log"
