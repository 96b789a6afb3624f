#!/bin/sh
# Rendered by lab: start the tunnel charons of branch2, each in its namespace.
for c in azgw-branch2; do setsid sh /lab/tunnels/$c/charon.sh </dev/null >/dev/null 2>&1 & done
