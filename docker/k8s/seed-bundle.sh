#!/bin/sh
# Seeds an empty shared bundle volume with the image's bundle (models/default), once.
#   seed-bundle.sh <image bundle folder> <shared volume folder>
# Every file is copied under a temporary name and renamed into place, manifest.json last: a replica
# that starts meanwhile sees no manifest (and waits, restarted by its orchestrator) or a whole
# bundle, never a partial one. Two seeders at once write the same bytes; the renames keep it whole.
set -eu
src=$1
dst=$2
if [ -f "$dst/manifest.json" ]; then
  echo "bundle volume $dst already seeded"
  exit 0
fi
tag=".seed-${HOSTNAME:-seed}-$$"
cd "$src"
find . -type f ! -name manifest.json | while read -r f; do
  mkdir -p "$dst/$(dirname "$f")"
  cp "$f" "$dst/$f$tag"
  mv "$dst/$f$tag" "$dst/$f"
done
cp manifest.json "$dst/manifest.json$tag"
mv "$dst/manifest.json$tag" "$dst/manifest.json"
echo "seeded $dst from $src"
