#!/bin/sh
# Rendered by lab: the tunnel interfaces of hub-1 (docs/route-based.md). Idempotent.
set -e
while ip rule del pref 100 2>/dev/null; do :; done
rm -f /var/run/charon.pid
for l in vti-hub-a vti-hub-b vti-hub-c; do ip link del $l 2>/dev/null || true; done
for ns in tun-hub-a tun-hub-b tun-hub-c; do ip netns del $ns 2>/dev/null || true; done
ip rule add pref 110 lookup local 2>/dev/null || true  # `local` after the steering rules
ip rule del pref 0 lookup local 2>/dev/null || true
ip -b - <<EOF
netns add tun-hub-a
netns add tun-hub-b
netns add tun-hub-c
link add vti-hub-a type veth peer name ext netns tun-hub-a
addr add 169.254.128.0/31 dev vti-hub-a
link set vti-hub-a alias "hub-a to 198.51.100.31" up
route replace default via 169.254.128.1 dev vti-hub-a table 1000
rule add pref 100 from 198.51.100.31 ipproto udp dport 500 table 1000
rule add pref 100 from 198.51.100.31 ipproto udp dport 4500 table 1000
link add vti-hub-b type veth peer name ext netns tun-hub-b
addr add 169.254.128.2/31 dev vti-hub-b
link set vti-hub-b alias "hub-b to 198.51.100.32" up
route replace default via 169.254.128.3 dev vti-hub-b table 1001
rule add pref 100 from 198.51.100.32 ipproto udp dport 500 table 1001
rule add pref 100 from 198.51.100.32 ipproto udp dport 4500 table 1001
link add vti-hub-c type veth peer name ext netns tun-hub-c
addr add 169.254.128.4/31 dev vti-hub-c
link set vti-hub-c alias "hub-c to 198.51.100.33" up
route replace default via 169.254.128.5 dev vti-hub-c table 1002
rule add pref 100 from 198.51.100.33 ipproto udp dport 500 table 1002
rule add pref 100 from 198.51.100.33 ipproto udp dport 4500 table 1002
EOF
ip -n tun-hub-a -b - <<EOF
link set lo up
addr add 203.0.113.30/32 dev lo
addr add 10.30.0.1/32 dev lo
addr add 169.254.128.1/31 dev ext
link set ext up
route add default via 169.254.128.0 dev ext
rule add pref 100 iif ipsec0 table main
rule add pref 150 iif lo ipproto icmp table main
rule add pref 230 iif ext blackhole
EOF
ethtool -K vti-hub-a tx off >/dev/null
ip -n tun-hub-b -b - <<EOF
link set lo up
addr add 203.0.113.30/32 dev lo
addr add 10.30.0.1/32 dev lo
addr add 169.254.128.3/31 dev ext
link set ext up
route add default via 169.254.128.2 dev ext
rule add pref 100 iif ipsec0 table main
rule add pref 150 iif lo ipproto icmp table main
rule add pref 230 iif ext blackhole
EOF
ethtool -K vti-hub-b tx off >/dev/null
ip -n tun-hub-c -b - <<EOF
link set lo up
addr add 203.0.113.30/32 dev lo
addr add 10.30.0.1/32 dev lo
addr add 169.254.128.5/31 dev ext
link set ext up
route add default via 169.254.128.4 dev ext
rule add pref 100 iif ipsec0 table main
rule add pref 150 iif lo ipproto icmp table main
rule add pref 230 iif ext blackhole
EOF
ethtool -K vti-hub-c tx off >/dev/null
unshare -m sh -c 'mount -o remount,rw,bind /proc/sys && sysctl -qw net/ipv4/conf/vti-hub-a/accept_local=1 net/ipv4/conf/vti-hub-b/accept_local=1 net/ipv4/conf/vti-hub-c/accept_local=1'
