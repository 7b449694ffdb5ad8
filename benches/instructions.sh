#!/usr/bin/env bash
# Instructions per message on the ring's hot paths (benches/instructions.rs), counted
# by callgrind: the count at 2n messages minus the count at n, divided by n.
# Needs valgrind (`apt-get install valgrind`). Usage: bash benches/instructions.sh [PATH...]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
bin=$(cargo bench --bench instructions --no-run --message-format=json 2>/dev/null \
  | sed -n 's/.*"executable":"\([^"]*instructions[^"]*\)".*/\1/p' | tail -1)
[ -x "$bin" ] || { echo "could not build benches/instructions.rs" >&2; exit 1; }
n=${N:-100000}
paths=("$@")
[ ${#paths[@]} -gt 0 ] || paths=(copy zero_copy try_copy try_zero_copy busy_poll_copy queue_u64)
count() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 | awk '/Collected/ {print $4}'; }
printf '%-16s %8s %8s %8s\n' path 8B 64B 1KiB
for p in "${paths[@]}"; do
  row=$(printf '%-16s' "$p")
  for size in 8 64 1024; do
    a=$(count "$bin" "$p" "$n" "$size"); b=$(count "$bin" "$p" $((2 * n)) "$size")
    row+=$(printf ' %8d' $(((b - a) / n)))
  done
  echo "$row"
done
