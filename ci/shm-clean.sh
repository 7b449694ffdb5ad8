#!/usr/bin/env bash
# The suite must leave nothing behind in /dev/shm.
set -euo pipefail
left=$(ls /dev/shm 2>/dev/null | grep '^shmkit' || true)
if [ -n "$left" ]; then
  echo "segments left in /dev/shm after the tests:"
  echo "$left"
  exit 1
fi
echo "no shmkit segments left in /dev/shm"
