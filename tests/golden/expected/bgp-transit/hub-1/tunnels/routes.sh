#!/bin/sh
# Rendered by lab: routes of hub-1 into its tunnel interfaces whose CHILD_SA is up.
{
h=""
[ -e /lab/tunnels/hub-branch1/up ] && h="$h nexthop via 169.254.128.1 dev vti-hub-branch1"
if [ -n "$h" ]; then echo "route replace 10.2.0.0/16 src 10.1.0.6 proto static $h"; else echo "route del 10.2.0.0/16 proto static"; fi
h=""
[ -e /lab/tunnels/hub-branch2/up ] && h="$h nexthop via 169.254.128.3 dev vti-hub-branch2"
if [ -n "$h" ]; then echo "route replace 10.3.0.0/16 src 10.1.0.6 proto static $h"; else echo "route del 10.3.0.0/16 proto static"; fi
h=""
[ -e /lab/tunnels/hub-spoke/up ] && h="$h nexthop via 169.254.128.5 dev vti-hub-spoke"
if [ -n "$h" ]; then echo "route replace 10.5.0.0/16 src 10.1.0.6 proto static $h"; else echo "route del 10.5.0.0/16 proto static"; fi
} | ip -force -batch - 2>&1 | grep -v -e '^RTNETLINK answers: No such process' -e '^Command failed' >&2
exit 0
