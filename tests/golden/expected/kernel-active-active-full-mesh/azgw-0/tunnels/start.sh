#!/bin/sh
# Rendered by lab: start the tunnel charons of azgw-0, 10 at a time.
start() { p=$(cat /lab/tunnels/$1/charon.pid 2>/dev/null); [ "$(cat /proc/$p/comm 2>/dev/null)" = charon ] && return; rm -f /lab/tunnels/$1/run/charon.vici; setsid sh /lab/tunnels/$1/charon.sh </dev/null >/dev/null 2>&1 & }
ready() { for c; do i=0; while [ ! -S /lab/tunnels/$c/run/charon.vici ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done; done; }
for c in azgw-onprem-0 azgw-onprem-1; do start $c; done; ready azgw-onprem-0 azgw-onprem-1
