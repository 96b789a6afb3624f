#!/bin/sh
# Rendered by lab: routes of onprem into its tunnel interfaces whose CHILD_SA is up.
{
h=""
[ -e /lab/tunnels/azgw-onprem-0/up ] && h="$h nexthop via 169.254.128.1 dev vti-azgw-~7e9-0"
[ -e /lab/tunnels/azgw-onprem-1/up ] && h="$h nexthop via 169.254.128.3 dev vti-azgw-~534-1"
if [ -n "$h" ]; then echo "route replace 10.1.0.0/16 src 10.2.0.1 proto static $h"; else echo "route del 10.1.0.0/16 proto static"; fi
} | ip -force -batch - 2>&1 | grep -v -e '^RTNETLINK answers: No such process' -e '^Command failed' >&2
exit 0
