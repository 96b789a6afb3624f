#!/bin/sh
# Runs inside the guest (started by its init): dockerd, the lab's node image from the host, then pytest
# on the shared project tree. Writes /io/rc (pytest's exit status) and /io/junit.xml.
echo 1 >/io/rc
. /io/env  # GUEST_PYTEST_ARGS, written by lab.guest on the host
echo "guest: kernel $(uname -r), $(nproc) CPUs"
modprobe -a esp4 xfrm_user xfrm_interface ip_vti tun veth bridge overlay nf_tables || exit 1
# No docker bridge and no iptables: lab containers run with network none; links are wired by the lab.
dockerd --iptables=false --ip6tables=false --bridge=none >/io/dockerd.log 2>&1 &
i=0
until docker info >/dev/null 2>&1; do
  i=$((i + 1)); [ "$i" -gt 120 ] && { echo "guest: dockerd did not start"; tail -n 20 /io/dockerd.log; exit 1; }
  sleep 1
done
echo "guest: dockerd up after ${i} s; loading the node image"
start=$(date +%s)
docker load -i /io/node-image.tar || exit 1
echo "guest: docker load took $(( $(date +%s) - start )) s"
cd /src || exit 1
export PYTHONPATH=/src PYTHONDONTWRITEBYTECODE=1 LAB_HOME=/var/lib/lab HOME=/root
# shellcheck disable=SC2086 # GUEST_PYTEST_ARGS is a word list on purpose
python3 -m pytest -p no:cacheprovider -o cache_dir=/tmp/pytest-cache --junitxml=/io/junit.xml $GUEST_PYTEST_ARGS
echo $? >/io/rc
echo "guest: pytest exit status $(cat /io/rc)"
