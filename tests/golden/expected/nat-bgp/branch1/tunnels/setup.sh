#!/bin/sh
# Rendered by lab: the tunnel interfaces of branch1 (docs/route-based.md). Idempotent.
set -e
while ip rule del pref 100 2>/dev/null; do :; done
rm -f /var/run/charon.pid
for l in vti-azgw-br~1d5; do ip link del $l 2>/dev/null || true; done
for ns in tun-azgw-branch1; do ip netns del $ns 2>/dev/null || true; done
ip rule add pref 110 lookup local 2>/dev/null || true  # `local` after the steering rules
ip rule del pref 0 lookup local 2>/dev/null || true
ip -b - <<EOF
netns add tun-azgw-branch1
link add vti-azgw-br~1d5 type veth peer name ext netns tun-azgw-branch1
addr add 169.254.128.0/31 dev vti-azgw-br~1d5
link set vti-azgw-br~1d5 alias "azgw-branch1 to 203.0.113.10" up
route replace default via 169.254.128.1 dev vti-azgw-br~1d5 table 1000
rule add pref 100 from 203.0.113.10 ipproto udp dport 500 table 1000
rule add pref 100 from 203.0.113.10 ipproto udp dport 4500 table 1000
EOF
ip -n tun-azgw-branch1 -b - <<EOF
link set lo up
addr add 198.51.100.10/32 dev lo
addr add 169.254.128.1/31 dev ext
link set ext up
route add default via 169.254.128.0 dev ext
rule add pref 100 iif ipsec0 table main
rule add pref 150 iif lo ipproto icmp table main
rule add pref 230 iif ext blackhole
EOF
ethtool -K vti-azgw-br~1d5 tx off >/dev/null
unshare -m sh -c 'mount -o remount,rw,bind /proc/sys && sysctl -qw net/ipv4/conf/vti-azgw-br~1d5/accept_local=1'
