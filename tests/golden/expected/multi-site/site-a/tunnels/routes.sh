#!/bin/sh
# Rendered by lab: routes of site-a into its tunnel interfaces whose CHILD_SA is up.
h=""
[ -e /lab/tunnels/hub-a/up ] && h="$h nexthop via 169.254.128.1 dev vti-hub-a"
if [ -n "$h" ]; then ip route replace 10.30.0.0/16 src 10.31.0.1 proto static $h; else ip route del 10.30.0.0/16 proto static 2>/dev/null; fi
exit 0
