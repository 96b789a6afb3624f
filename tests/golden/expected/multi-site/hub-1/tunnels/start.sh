#!/bin/sh
# Rendered by lab: start the tunnel charons of hub-1, each in its namespace.
for c in hub-a hub-b hub-c; do setsid sh /lab/tunnels/$c/charon.sh </dev/null >/dev/null 2>&1 & done
