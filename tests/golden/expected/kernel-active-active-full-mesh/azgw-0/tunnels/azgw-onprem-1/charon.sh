#!/bin/sh
# Rendered by lab: the charon of tunnel azgw-onprem-1 (vti-azgw-~534-1), in namespace tun-azgw-onprem-1.
exec ip netns exec tun-azgw-onprem-1 sh -c '
mount -o remount,rw,bind /proc/sys && sysctl -qw net/ipv4/ip_forward=1 net/ipv4/conf/all/rp_filter=0 net/ipv4/conf/default/rp_filter=0 net/ipv4/conf/ext/rp_filter=0 net/ipv4/conf/ext/proxy_arp=1
ethtool -K ext tx off >/dev/null 2>&1 || true
mount -t tmpfs tmpfs /run
mkdir -p /lab/tunnels/azgw-onprem-1/run
[ -e /lab/tunnels/azgw-onprem-1/up ] && rm -f /lab/tunnels/azgw-onprem-1/up && nsenter --net=/proc/1/ns/net flock /lab/tunnels/.lock sh /lab/tunnels/routes.sh
echo $$ > /lab/tunnels/azgw-onprem-1/charon.pid
STRONGSWAN_CONF=/lab/tunnels/azgw-onprem-1/strongswan.conf exec /usr/lib/ipsec/charon'
