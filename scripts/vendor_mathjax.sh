#!/usr/bin/env bash
# Re-create book/_static/mathjax/, the pinned MathJax copy the book serves itself (so that its math
# renders with no network), from the npm registry's tarball, checked by SHA256. Not part of setup:
# the copy is committed; run this only to change the pinned version (then update VERSION and SHA256).
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=3.2.2
SHA256=1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09
URL="https://registry.npmjs.org/mathjax/-/mathjax-$VERSION.tgz"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if command -v npm >/dev/null; then (cd "$tmp" && npm pack --silent "mathjax@$VERSION" >/dev/null)
else curl -fsSL "$URL" -o "$tmp/mathjax-$VERSION.tgz"; fi
echo "$SHA256  $tmp/mathjax-$VERSION.tgz" | sha256sum -c -
tar xzf "$tmp/mathjax-$VERSION.tgz" -C "$tmp"
dest=book/_static/mathjax
rm -rf "$dest"
mkdir -p "$dest/output/chtml/fonts"
# the single-file TeX-input, CommonHTML-output component with every TeX extension, and its fonts
cp "$tmp/package/es5/tex-chtml-full.js" "$dest/"
cp -r "$tmp/package/es5/output/chtml/fonts/woff-v2" "$dest/output/chtml/fonts/"
cp "$tmp/package/LICENSE" "$dest/LICENSE"
cat > "$dest/README.md" <<EOT
# MathJax $VERSION (pinned copy)

Files taken unchanged from the npm package \`mathjax@$VERSION\` ($URL,
SHA256 $SHA256): \`es5/tex-chtml-full.js\` and \`es5/output/chtml/fonts/woff-v2/\`.
MathJax is licensed under the Apache License 2.0 (\`LICENSE\` here). \`_config.yml\` points Sphinx's
\`mathjax_path\` at this copy, so the built book renders its math without a network.
Regenerate with \`bash scripts/vendor_mathjax.sh\`.
EOT
echo "MathJax $VERSION -> $dest ($(du -sh "$dest" | cut -f1))"
