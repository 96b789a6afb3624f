#!/bin/sh
# Rendered by lab: routes of hub-1 into its tunnel interfaces whose CHILD_SA is up.
{
h=""
[ -e /lab/tunnels/hub-a/up ] && h="$h nexthop via 169.254.128.1 dev vti-hub-a"
if [ -n "$h" ]; then echo "route replace 10.31.0.0/16 src 10.30.0.6 proto static $h"; else echo "route del 10.31.0.0/16 proto static"; fi
h=""
[ -e /lab/tunnels/hub-b/up ] && h="$h nexthop via 169.254.128.3 dev vti-hub-b"
if [ -n "$h" ]; then echo "route replace 10.32.0.0/16 src 10.30.0.6 proto static $h"; else echo "route del 10.32.0.0/16 proto static"; fi
h=""
[ -e /lab/tunnels/hub-c/up ] && h="$h nexthop via 169.254.128.5 dev vti-hub-c"
if [ -n "$h" ]; then echo "route replace 10.33.0.0/16 src 10.30.0.6 proto static $h"; else echo "route del 10.33.0.0/16 proto static"; fi
} | ip -force -batch - 2>&1 | grep -v -e '^RTNETLINK answers: No such process' -e '^Command failed' >&2
exit 0
