#!/bin/sh
# Rendered by lab: start the tunnel charons of onprem, each in its namespace.
for c in azgw-onprem; do setsid sh /lab/tunnels/$c/charon.sh </dev/null >/dev/null 2>&1 & done
