#!/bin/sh
# Rendered by lab: start the tunnel charons of branch1, each in its namespace.
for c in azgw-branch1; do setsid sh /lab/tunnels/$c/charon.sh </dev/null >/dev/null 2>&1 & done
