#!/bin/sh
# Rendered by lab: the charon of tunnel azgw-onprem-0 (vti-azgw-~7e9-0), in namespace tun-azgw-onprem-0.
exec ip netns exec tun-azgw-onprem-0 sh -c '
mount -o remount,rw,bind /proc/sys && sysctl -qw net/ipv4/ip_forward=1 net/ipv4/conf/all/rp_filter=0 net/ipv4/conf/default/rp_filter=0 net/ipv4/conf/ext/rp_filter=0 net/ipv4/conf/ext/proxy_arp=1
ethtool -K ext tx off >/dev/null 2>&1 || true
mount -t tmpfs tmpfs /run
mkdir -p /lab/tunnels/azgw-onprem-0/run
[ -e /lab/tunnels/azgw-onprem-0/up ] && rm -f /lab/tunnels/azgw-onprem-0/up && nsenter --net=/proc/1/ns/net flock /lab/tunnels/.lock sh /lab/tunnels/routes.sh
echo $$ > /lab/tunnels/azgw-onprem-0/charon.pid
STRONGSWAN_CONF=/lab/tunnels/azgw-onprem-0/strongswan.conf exec /usr/lib/ipsec/charon'
