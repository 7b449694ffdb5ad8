#!/usr/bin/env bash
# Publish-ready: every published crate packs with its license texts and README, and
# builds from its .crate alone (`cargo package --workspace` verifies each package against
# the others packed in the same run, cargo >= 1.90, so crates that depend on unpublished
# workspace crates verify too). The xtask is developer tooling (`publish = false`).
# By hand with uncommitted changes: PACKAGE_ALLOW_DIRTY=1 ci/package.sh
# Time on the 2-core AMD EPYC KVM guest (2026-12-03, load average 8-11 from parallel
# builds): 157 s with an empty target dir (niced), 30 s when the dependencies are built.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
dirty=()
if [ "${PACKAGE_ALLOW_DIRTY:-0}" != 0 ]; then dirty=(--allow-dirty); fi

# The published packages: every workspace member whose `publish` is not false.
mapfile -t crates < <(cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys
m = json.load(sys.stdin)
members = set(m["workspace_members"])
for p in m["packages"]:
    if p["id"] in members and p.get("publish") != []:
        print(p["name"])
')

status=0
for c in "${crates[@]}"; do
  files=$(cargo package --list -p "$c" "${dirty[@]}" 2>/dev/null)
  for f in LICENSE-MIT LICENSE-APACHE README.md; do
    if ! grep -qx "$f" <<<"$files"; then
      echo "package: $c does not ship $f"
      status=1
    fi
  done
  meta=$(cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys
name = sys.argv[1]
p = next(p for p in json.load(sys.stdin)["packages"] if p["name"] == name)
missing = [k for k in ("description", "license", "repository", "documentation", "readme")
           if not p.get(k)]
missing += [k for k in ("keywords", "categories") if not p.get(k)]
if "example.invalid" in (p.get("repository") or ""):
    missing.append("repository (example.invalid)")
print(" ".join(missing))
' "$c")
  if [ -n "$meta" ]; then
    echo "package: $c lacks $meta"
    status=1
  fi
done
[ $status = 0 ] || exit 1

excluded=()
mapfile -t all < <(cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys
m = json.load(sys.stdin)
members = set(m["workspace_members"])
for p in m["packages"]:
    if p["id"] in members and p.get("publish") == []:
        print(p["name"])
')
for x in "${all[@]}"; do excluded+=(--exclude "$x"); done

# Verification unpacks each packed crate into a temporary local registry under
# ~/.cargo/registry/src/-<hash>/, and cargo reuses an unpacked directory of the same name
# and version from an earlier run: a second run on one machine then verified against
# stale sources (shmkit-ring 0.1.0 against an old shmkit-sync 0.1.0). Drop our crates
# from those temporary registries first (crates.io's index directories are untouched).
# Our crates keep version 0.1.0 from one commit to the next, and cargo takes a registry
# crate of a known version as unchanged: drop what an earlier run on this machine left
# (the unpacked crates, and the verification builds and temporary registry under the
# target directory, whose stale `shmkit-sync` rlib once failed `shmkit-ring`'s verify).
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
rm -rf "$cargo_home"/registry/src/-*/shmkit* "$cargo_home"/registry/cache/-*/shmkit*
target="${CARGO_TARGET_DIR:-$PWD/target}"
rm -rf "$target/package"
# The verification builds compile the packed crates into the target directory's debug
# profile, keyed by name and version only: remove those builds (their dep-info names
# the unpacked registry sources) so they are compiled from this commit's packages.
for d in "$target"/debug/deps/shmkit_*.d; do
  [ -e "$d" ] || continue
  if grep -q "registry/src/-[0-9a-f]*/shmkit" "$d"; then
    h=$(basename "$d" .d)
    rm -rf "$target/debug/deps/$h"* "$target/debug/deps/lib$h".* \
      "$target/debug/.fingerprint/${h//_/-}"
  fi
done

echo "+ cargo package --workspace ${excluded[*]} ${dirty[*]}"
cargo package --workspace "${excluded[@]}" "${dirty[@]}"
echo "package: ${#crates[@]} crates (${crates[*]}) pack with LICENSE-MIT, LICENSE-APACHE and README.md and verify, in $(( $(date +%s) - start )) s"
