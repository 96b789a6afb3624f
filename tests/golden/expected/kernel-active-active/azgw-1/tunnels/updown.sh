#!/bin/sh
# Rendered by lab. strongSwan's updown plugin runs this in a tunnel's namespace when its CHILD_SA goes up
# or down ($1: the connection); the routes into the tunnel interfaces follow (routes.sh, main namespace).
d=/lab/tunnels/$1
case "$PLUTO_VERB" in
  up-client) touch "$d/up"; ip link set ipsec0 txqueuelen 10000 2>/dev/null ;;
  down-client) rm -f "$d/up" ;;
  *) exit 0 ;;
esac
exec nsenter --net=/proc/1/ns/net flock /lab/tunnels/.lock sh /lab/tunnels/routes.sh
