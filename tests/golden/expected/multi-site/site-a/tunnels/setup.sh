#!/bin/sh
# Rendered by lab: the tunnel interfaces of site-a (docs/route-based.md). Idempotent.
set -e
while ip rule del pref 100 2>/dev/null; do :; done
rm -f /var/run/charon.pid
for l in vti-hub-a; do ip link del $l 2>/dev/null || true; done
for ns in tun-hub-a; do ip netns del $ns 2>/dev/null || true; done
ip rule add pref 110 lookup local 2>/dev/null || true  # `local` after the steering rules
ip rule del pref 0 lookup local 2>/dev/null || true
ip -b - <<EOF
netns add tun-hub-a
link add vti-hub-a type veth peer name ext netns tun-hub-a
addr add 169.254.128.0/31 dev vti-hub-a
link set vti-hub-a alias "hub-a to 203.0.113.30" up
route replace default via 169.254.128.1 dev vti-hub-a table 1000
rule add pref 100 from 203.0.113.30 ipproto udp dport 500 table 1000
rule add pref 100 from 203.0.113.30 ipproto udp dport 4500 table 1000
EOF
ip -n tun-hub-a -b - <<EOF
link set lo up
addr add 198.51.100.31/32 dev lo
addr add 169.254.128.1/31 dev ext
link set ext up
route add default via 169.254.128.0 dev ext
rule add pref 100 iif ipsec0 table main
rule add pref 150 iif lo ipproto icmp table main
rule add pref 230 iif ext blackhole
EOF
ethtool -K vti-hub-a tx off >/dev/null
unshare -m sh -c 'mount -o remount,rw,bind /proc/sys && sysctl -qw net/ipv4/conf/vti-hub-a/accept_local=1'
