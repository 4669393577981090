#!/usr/bin/env bash
# Vendor the JavaScript that renders ipywidgets on the static site, so that a page's embedded widget
# state shows with no network. Jupyter Book 1 (MyST-NB) loads these two files from CDNs by default;
# _config.yml points `nb_ipywidgets_js` at the copies this script writes into static/widgets/vendor/,
# which `html_extra_path` copies to _build/html/widgets/vendor/ (static/widgets/require-config.js, ours,
# lets embed-amd.js find its fonts there). The folder is deliberately not `_static/`: Jupyter Book 1
# injects every .js file under the static paths into every page once a `_static/` folder exists.
#
# Run it again only to change versions (keep them equal to MyST-NB's defaults): it needs npm.
set -euo pipefail
cd "$(dirname "$0")/.."

HTML_MANAGER_VERSION=1.0.6 # @jupyter-widgets/html-manager: renders ipywidgets 8 state
REQUIREJS_VERSION=2.3.4    # the AMD loader embed-amd.js expects
dest=static/widgets/vendor

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "@jupyter-widgets/html-manager@$HTML_MANAGER_VERSION" \
  "requirejs@$REQUIREJS_VERSION" >/dev/null)
mkdir -p "$work/html-manager" "$work/requirejs"
tar -xzf "$work/jupyter-widgets-html-manager-$HTML_MANAGER_VERSION.tgz" -C "$work/html-manager"
tar -xzf "$work/requirejs-$REQUIREJS_VERSION.tgz" -C "$work/requirejs"

rm -rf "$dest"
mkdir -p "$dest"
# embed-amd.js bundles @jupyter-widgets/base, controls and output, so the standard widgets need no
# further downloads. It loads its icon fonts from its own folder; browsers only fetch the woff2 ones.
cp "$work/html-manager/package/dist/embed-amd.js" "$dest/"
cp "$work/html-manager/package/dist/"*.woff2 "$dest/"
cp "$work/html-manager/package/LICENSE" "$dest/LICENSE-html-manager.txt"
cp "$work/requirejs/package/require.js" "$dest/"
# require.js carries its MIT licence in its header.
(cd "$dest" && sha256sum -- *.js *.woff2 >SHA256SUMS)
echo "vendored html-manager $HTML_MANAGER_VERSION and requirejs $REQUIREJS_VERSION into $dest"
