#!/bin/sh
# Rendered by lab: start the tunnel charons of site-a, each in its namespace.
for c in hub-a; do setsid sh /lab/tunnels/$c/charon.sh </dev/null >/dev/null 2>&1 & done
