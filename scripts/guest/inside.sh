#!/bin/sh
# Runs inside the guest (started by its init from the read-only project share). /io/env (written by
# lab.guest on the host) sets GUEST_MODE:
#   load: /dev/vdb is a fresh ext4 disk for Docker's data: load the node image into it, stop, write /io/loaded
#   test: /dev/vdb already holds the image (under a throw-away overlay): run pytest, write /io/rc, junit.xml
#   (GUEST_RUN set: run that shell command instead of pytest; its exit status goes to /io/rc)
echo 1 >/io/rc
. /io/env
echo "guest: kernel $(uname -r), $(nproc) CPUs, mode $GUEST_MODE"
# not ip_vti: it adds ip_vti0 to every namespace, the host's too, and the lab has no use for it
modprobe -a esp4 xfrm_user xfrm_interface tun veth bridge overlay nf_tables || exit 1
mkdir -p /var/lib/docker
mount /dev/vdb /var/lib/docker || exit 1
# No docker bridge and no iptables: lab containers run with network none; links are wired by the lab.
dockerd --iptables=false --ip6tables=false --bridge=none >/io/dockerd.log 2>&1 &
i=0
until docker info >/dev/null 2>&1; do
  i=$((i + 1)); [ "$i" -gt 120 ] && { echo "guest: dockerd did not start"; tail -n 20 /io/dockerd.log; exit 1; }
  sleep 1
done
echo "guest: dockerd up after ${i} s"

stop_docker() {
  kill -TERM "$(cat /var/run/docker.pid)" 2>/dev/null
  while [ -e /var/run/docker.pid ]; do sleep 0.5; done
  sync
  umount /var/lib/docker
}

if [ "$GUEST_MODE" = load ]; then
  start=$(date +%s)
  docker load -i /io/node-image.tar || exit 1
  echo "guest: docker load took $(( $(date +%s) - start )) s"
  stop_docker
  echo "$GUEST_IMAGE" >/io/loaded
  echo 0 >/io/rc
  exit 0
fi

docker image inspect "$GUEST_IMAGE" >/dev/null || { echo "guest: $GUEST_IMAGE is not loaded"; exit 1; }
cd /src || exit 1
export PYTHONPATH=/src PYTHONDONTWRITEBYTECODE=1 LAB_HOME=/var/lib/lab HOME=/root
# Emulation (TCG) on a shared host is 10-20x slower: longer Docker API calls, lab waits and test budgets.
export LAB_DOCKER_TIMEOUT=600 LAB_TIME_SCALE=6
if [ -n "${GUEST_RUN:-}" ]; then
  sh -c "$GUEST_RUN"
else
  # GUEST_PYTEST_ARGS is shell words, quotes honoured (`-k 'not full_mesh'`): split it as the host's shell would
  eval "set -- $GUEST_PYTEST_ARGS"
  # -p lab.pytest_plugin: the project is not pip-installed in the guest, so its entry point is not either
  python3 -m pytest -p no:cacheprovider -p lab.pytest_plugin --junitxml=/io/junit.xml "$@"
fi
echo $? >/io/rc
echo "guest: exit status $(cat /io/rc)"
stop_docker
