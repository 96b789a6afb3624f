#!/bin/sh
# Rendered by lab: start the tunnel charons of azgw-0, each in its namespace.
for c in azgw-branch1 azgw-branch2; do setsid sh /lab/tunnels/$c/charon.sh </dev/null >/dev/null 2>&1 & done
