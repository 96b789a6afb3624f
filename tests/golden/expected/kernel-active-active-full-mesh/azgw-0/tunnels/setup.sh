#!/bin/sh
# Rendered by lab: the tunnel interfaces of azgw-0 (docs/route-based.md). Idempotent.
set -e
while ip rule del pref 100 2>/dev/null; do :; done
rm -f /var/run/charon.pid
for l in vti-azgw-~7e9-0 vti-azgw-~534-1; do ip link del $l 2>/dev/null || true; done
for ns in tun-azgw-onprem-0 tun-azgw-onprem-1; do ip netns del $ns 2>/dev/null || true; done
ip rule add pref 110 lookup local 2>/dev/null || true  # `local` after the steering rules
ip rule del pref 0 lookup local 2>/dev/null || true
ip -b - <<EOF
netns add tun-azgw-onprem-0
netns add tun-azgw-onprem-1
link add vti-azgw-~7e9-0 type veth peer name ext netns tun-azgw-onprem-0
addr add 169.254.128.0/31 dev vti-azgw-~7e9-0
link set vti-azgw-~7e9-0 alias "azgw-onprem-0 to 198.51.100.10" up
route replace default via 169.254.128.1 dev vti-azgw-~7e9-0 table 1000
rule add pref 100 from 198.51.100.10 ipproto udp dport 500 table 1000
rule add pref 100 from 198.51.100.10 ipproto udp dport 4500 table 1000
rule add pref 100 from 198.51.100.10 ipproto esp table 1000
link add vti-azgw-~534-1 type veth peer name ext netns tun-azgw-onprem-1
addr add 169.254.128.2/31 dev vti-azgw-~534-1
link set vti-azgw-~534-1 alias "azgw-onprem-1 to 198.51.100.11" up
route replace default via 169.254.128.3 dev vti-azgw-~534-1 table 1001
rule add pref 100 from 198.51.100.11 ipproto udp dport 500 table 1001
rule add pref 100 from 198.51.100.11 ipproto udp dport 4500 table 1001
rule add pref 100 from 198.51.100.11 ipproto esp table 1001
EOF
ip -n tun-azgw-onprem-0 -b - <<EOF
link set lo up
addr add 203.0.113.10/32 dev lo
addr add 10.1.0.1/32 dev lo
addr add 169.254.128.1/31 dev ext
link set ext up
route add default via 169.254.128.0 dev ext
rule add pref 100 iif ipsec0 table main
rule add pref 150 iif lo ipproto icmp table main
rule add pref 230 iif ext blackhole
link add xfrm0 type xfrm dev ext if_id 1
link set xfrm0 mtu 1400 up
route add default dev xfrm0 table 221
rule add pref 221 iif ext table 221
EOF
ethtool -K vti-azgw-~7e9-0 tx off >/dev/null
ip -n tun-azgw-onprem-1 -b - <<EOF
link set lo up
addr add 203.0.113.10/32 dev lo
addr add 10.1.0.1/32 dev lo
addr add 169.254.128.3/31 dev ext
link set ext up
route add default via 169.254.128.2 dev ext
rule add pref 100 iif ipsec0 table main
rule add pref 150 iif lo ipproto icmp table main
rule add pref 230 iif ext blackhole
link add xfrm0 type xfrm dev ext if_id 1
link set xfrm0 mtu 1400 up
route add default dev xfrm0 table 221
rule add pref 221 iif ext table 221
EOF
ethtool -K vti-azgw-~534-1 tx off >/dev/null
unshare -m sh -c 'mount -o remount,rw,bind /proc/sys && sysctl -qw net/ipv4/conf/vti-azgw-~7e9-0/accept_local=1 net/ipv4/conf/vti-azgw-~534-1/accept_local=1'
