#!/bin/sh
# Rendered by lab: routes of azgw-1 into its tunnel interfaces whose CHILD_SA is up.
{
h=""
[ -e /lab/tunnels/azgw-onprem/up ] && h="$h nexthop via 169.254.128.1 dev vti-azgw-onprem"
if [ -n "$h" ]; then echo "route replace 10.2.0.0/16 src 10.1.0.5 proto static $h"; else echo "route del 10.2.0.0/16 proto static"; fi
} | ip -force -batch - 2>&1 | grep -v -e '^RTNETLINK answers: No such process' -e '^Command failed' >&2
exit 0
