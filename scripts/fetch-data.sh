#!/bin/sh
# Fetch the real T1 head images of Debian's mricron-data package (BSD-3-clause, MRIcron, Chris Rorden)
# without installing it, into data/mricron/ (git-ignored). Idempotent.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
dest="$here/data/mricron"
want="ch2.nii.gz ch2bet.nii.gz ch2better.nii.gz inia19-t1-brain.nii.gz"
missing=0
for f in $want; do [ -s "$dest/$f" ] || missing=1; done
if [ "$missing" = 0 ]; then echo "data present: $dest"; exit 0; fi

if [ -d /usr/share/mricron/templates ] && [ -s /usr/share/mricron/templates/ch2.nii.gz ]; then
  mkdir -p "$dest"
  for f in $want; do cp /usr/share/mricron/templates/$f "$dest/$f"; done
  echo "copied from the installed mricron-data: $dest"; exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "fetch-data: apt-get not found. Get Debian's 'mricron-data' package by hand, unpack it with" >&2
  echo "  dpkg -x mricron-data_*.deb DIR   and copy DIR/usr/share/mricron/templates/{$want} to $dest/" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
if ! apt-get download mricron-data >/dev/null 2>&1; then
  # package lists may be missing on a fresh machine; refresh them once (needs root)
  apt-get update >/dev/null 2>&1 || true
  if ! apt-get download mricron-data >/dev/null 2>&1; then
    echo "fetch-data: 'apt-get download mricron-data' failed. Run 'apt-get update' (as root) and retry," >&2
    echo "  or put the files $want in $dest/ by hand." >&2
    exit 1
  fi
fi
dpkg -x mricron-data_*.deb x
mkdir -p "$dest"
for f in $want; do cp "x/usr/share/mricron/templates/$f" "$dest/$f.tmp" && mv "$dest/$f.tmp" "$dest/$f"; done
cp x/usr/share/doc/mricron-data/copyright "$dest/COPYRIGHT" 2>/dev/null || true
echo "fetched mricron-data into $dest"
