"""The kernel-ESP test guest: a QEMU VM with Debian's stock kernel, Docker and the project's Python deps, in
which the integration tests run on the kernel data plane (`make test-kernel`). This host's kernel has no ESP.

image.py builds and caches the guest's disk (keyed by a hash of its inputs); vm.py boots it with QEMU's
software emulation (TCG: /dev/kvm here only runs PVM kernels) and no network; __main__.py ties them together.
"""
