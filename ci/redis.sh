#!/usr/bin/env bash
# shmkit-remote's tests start their own redis-server (random loopback port, temporary
# directory); this installs the Debian package when the binary is missing.
set -euxo pipefail
if ! command -v redis-server >/dev/null; then
  apt-get update
  apt-get install -y redis-server
fi
redis-server --version
