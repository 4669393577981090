#!/usr/bin/env bash
# Vendor MathJax 3 so that the site typesets its maths with no network. Sphinx loads MathJax from a
# CDN by default; _config.yml points `mathjax_path` at the copy this script writes into
# static/mathjax/, which `html_extra_path` copies to _build/html/mathjax/ (not `_static/`: see
# vendor_widget_js.sh).
#
# Fetched, not committed: the copy is ~9 MB of generated JavaScript, and every machine that builds
# the book (this one, CI) reaches npm. `make book` and `make unit` run this script when the copy is
# missing; the tarball's sha256 is pinned below, so a build never serves anything else.
set -euo pipefail
cd "$(dirname "$0")/.."

MATHJAX_VERSION=3.2.2
MATHJAX_SHA256=1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09
dest=static/mathjax

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "mathjax@$MATHJAX_VERSION" >/dev/null)
tarball="$work/mathjax-$MATHJAX_VERSION.tgz"
echo "$MATHJAX_SHA256  $tarball" | sha256sum --check --quiet
tar -xzf "$tarball" -C "$work"

rm -rf "$dest"
mkdir -p "$dest"
# The es5/ folder is MathJax's browser build. tex-mml-chtml.js is the entry point Sphinx uses; it
# loads the rest on demand from its own folder: TeX extensions (input/), the CHTML fonts (output/),
# and the menu's accessibility tools (a11y/, ui/, sre/). The other combined builds are left out.
es5="$work/package/es5"
cp "$es5/tex-mml-chtml.js" "$dest/"
cp -r "$es5/input" "$es5/output" "$es5/a11y" "$es5/ui" "$es5/sre" "$es5/adaptors" "$dest/"
cp "$work/package/LICENSE" "$dest/LICENSE.txt"
echo "$MATHJAX_VERSION" >"$dest/VERSION"
echo "vendored mathjax $MATHJAX_VERSION into $dest"
