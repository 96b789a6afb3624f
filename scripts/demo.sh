#!/usr/bin/env bash
# The README's demo: bring the reference lab up, ping VNet host -> site host through the tunnel,
# show `lab inspect`, bring it down (also when a step fails).
set -euo pipefail
topology=${1:-topologies/s2s-route-based.yml}
name=$(python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["name"])' "$topology")
trap 'lab down "$name" >/dev/null 2>&1 || true' EXIT
lab up "$topology"
echo "--- vm1 -> pc1 through the tunnel"
lab exec vm1 --lab "$name" -- ping -c 3 -W 2 10.2.0.10
echo "--- after the ping"
lab inspect "$name"
lab down "$name"
trap - EXIT
