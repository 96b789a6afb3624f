#!/bin/sh
# Rendered by lab: start the tunnel charons of hub-0, each in its namespace.
for c in hub-branch1 hub-branch2 hub-spoke; do setsid sh /lab/tunnels/$c/charon.sh </dev/null >/dev/null 2>&1 & done
