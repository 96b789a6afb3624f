#!/bin/sh
# Rendered by lab: routes of azgw-0 into its tunnel interfaces whose CHILD_SA is up.
{
h=""
[ -e /lab/tunnels/azgw-branch1/up ] && h="$h nexthop via 169.254.128.1 dev vti-azgw-br~1d5"
if [ -n "$h" ]; then echo "route replace 100.0.2.0/24 src 10.0.1.5 proto static $h"; else echo "route del 100.0.2.0/24 proto static"; fi
h=""
[ -e /lab/tunnels/azgw-branch2/up ] && h="$h nexthop via 169.254.128.3 dev vti-azgw-br~c57"
if [ -n "$h" ]; then echo "route replace 100.0.3.0/24 src 10.0.1.5 proto static $h"; else echo "route del 100.0.3.0/24 proto static"; fi
} | ip -force -batch - 2>&1 | grep -v -e '^RTNETLINK answers: No such process' -e '^Command failed' >&2
exit 0
