#!/usr/bin/env bash
# The API docs as a user builds them (`cargo doc`): rustdoc with warnings denied (broken
# intra-doc links, bare URLs, ...), then a look at the generated HTML for links rustdoc
# resolved but could not place, which it renders as literal "[<code>name</code>]"
# without any warning. That happens to a link into another workspace crate whose pages
# do not exist yet when rustdoc runs: `cargo doc --workspace` documents the crates in
# parallel, in no fixed order. Every library crate therefore names its docs.rs root
# (`html_root_url`), which rustdoc uses when the local pages are not there (yet).
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTDOCFLAGS="${RUSTDOCFLAGS:-} -D warnings"
doc="${CARGO_TARGET_DIR:-target}/doc"
rm -rf "$doc"
cargo doc --workspace --no-deps --quiet
bad=$(grep -rlF '[<code>' --include='*.html' "$doc" || true)
if [ -n "$bad" ]; then
  echo "doc: links rendered as literal [<code>...</code>] (unresolved by rustdoc, no warning):"
  for f in $bad; do
    echo "  $f: e.g. $(grep -o '\[<code>[^<]*</code>\]' "$f" | head -3 | tr '\n' ' ')"
  done
  exit 1
fi
# Each library names the version in its manifest, so the fallback links are right.
version=$(cargo metadata --no-deps --format-version 1 |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["packages"][0]["version"])')
# Published libraries only: a `publish = false` crate (shmkit-testing) has no docs.rs pages.
libs=()
for lib in src/lib.rs crates/*/src/lib.rs; do
  grep -q '^publish = false' "${lib%src/lib.rs}Cargo.toml" || libs+=("$lib")
done
missing=$(grep -L 'html_root_url' "${libs[@]}" || true)
stale=$(grep -n 'html_root_url' "${libs[@]}" | grep -v "/$version/\"" || true)
if [ -n "$missing$stale" ]; then
  echo "doc: every lib.rs needs #![doc(html_root_url = \"https://docs.rs/<crate>/$version/\")]:"
  echo "$missing$stale"
  exit 1
fi
echo "doc: $(find "$doc" -name '*.html' | wc -l) pages, no rustdoc warning, no unresolved link"
