#!/bin/sh
# Rendered by lab: the charon of tunnel hub-b (vti-hub-b), in namespace tun-hub-b.
exec ip netns exec tun-hub-b sh -c '
mount -o remount,rw,bind /proc/sys && sysctl -qw net/ipv4/ip_forward=1 net/ipv4/conf/all/rp_filter=0 net/ipv4/conf/default/rp_filter=0 net/ipv4/conf/ext/rp_filter=0 net/ipv4/conf/ext/proxy_arp=1
ethtool -K ext tx off >/dev/null 2>&1 || true
mount -t tmpfs tmpfs /run
mkdir -p /lab/tunnels/hub-b/run
[ -e /lab/tunnels/hub-b/up ] && rm -f /lab/tunnels/hub-b/up && nsenter --net=/proc/1/ns/net flock /lab/tunnels/.lock sh /lab/tunnels/routes.sh
echo $$ > /lab/tunnels/hub-b/charon.pid
STRONGSWAN_CONF=/lab/tunnels/hub-b/strongswan.conf exec /usr/lib/ipsec/charon'
