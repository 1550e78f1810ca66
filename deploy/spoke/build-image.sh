#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Build the spoke image (deploy/spoke/Dockerfile) on this machine, as root,
# without Docker and without a registry:
#
#   1. a Debian bookworm base from the Debian archive with mmdebstrap
#      (minbase, slimmed and configured as the official debian:bookworm-slim
#      is: no docs, man pages or locales, apt's cache cleaned after installs);
#   2. that tar imported into buildah's store as $BASE_NAME;
#   3. `buildah bud` of the Dockerfile with --build-arg BASE=$BASE_NAME,
#      chroot isolation, vfs storage, docker format (the OCI format has no
#      HEALTHCHECK), REVISION from `git describe` (the build context has no .git);
#   4. one line on stdout: "image NAME ID SIZE" (SIZE as buildah says it, "391MB").
#
#   deploy/spoke/build-image.sh [-t NAME] [--iidfile FILE]
#
# Cheap to run again: the base tar is kept in $CACHE_DIR (keyed on the
# mmdebstrap arguments; REBUILD_BASE=1 makes a new one, the archive moves on),
# the base image is imported again only when the tar changed, and the build
# is skipped when an image NAME exists whose label holds the same key: a
# hash of the build context's files, the Dockerfile, the base and the
# revision. Environment: CACHE_DIR (default /var/cache/overlay-supervisor-image),
# MIRROR (default http://deb.debian.org/debian), STORAGE_DRIVER (default vfs).
# Needs mmdebstrap and buildah (scripts/setup installs them).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
NAME=overlay-supervisor-spoke
IIDFILE=
while [ $# -gt 0 ]; do
	case $1 in
	-t) NAME=$2; shift 2 ;;
	--iidfile) IIDFILE=$2; shift 2 ;;
	*) sed -n '3,25p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 64 ;;
	esac
done
CACHE_DIR=${CACHE_DIR:-/var/cache/overlay-supervisor-image}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
STORAGE_DRIVER=${STORAGE_DRIVER:-vfs}
BASE_NAME=localhost/overlay-supervisor-base:bookworm
KEY_LABEL=org.overlay-supervisor.build-key

say() { echo "build-image: $*" >&2; }
die() { say "$*"; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root (mmdebstrap --mode=root, buildah's store)"
for t in mmdebstrap buildah sha256sum; do
	command -v $t >/dev/null || die "$t is missing (scripts/setup installs it)"
done
mkdir -p "$CACHE_DIR"
exec 8>"$CACHE_DIR/lock"
flock 8 # one build at a time on this machine
# every buildah call on the same store (buildah keeps one per driver)
bah() { buildah --storage-driver "$STORAGE_DRIVER" "$@"; }
now() { date +%s%N; }
secs() { echo "scale=1; ($(now) - $1) / 1000000000" | bc; }

# ---- 1. the base -------------------------------------------------------------------------
# What debian:bookworm-slim has beyond minbase: dpkg leaves docs, man pages
# and translations out, apt deletes the .debs it installed (a RUN that
# installs packages keeps no archive in its layer) and fetches no translations.
base_args=(--variant=minbase --mode=root --format=tar
	--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
	--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
	--dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*'
	--aptopt='DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; }'
	--aptopt='APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; }'
	--aptopt='Dir::Cache::pkgcache ""' --aptopt='Dir::Cache::srcpkgcache ""'
	--aptopt='Acquire::Languages "none"'
	bookworm)
mirrors=("deb $MIRROR bookworm main" "deb $MIRROR bookworm-updates main"
	"deb ${MIRROR%/debian}/debian-security bookworm-security main")
base_key=$(printf '%s\n' "${base_args[@]}" "${mirrors[@]}" | sha256sum | cut -c1-16)
base_tar=$CACHE_DIR/base-$base_key.tar
if [ ! -s "$base_tar" ] || [ -n "${REBUILD_BASE:-}" ]; then
	t0=$(now)
	say "mmdebstrap bookworm (minbase, slim) from $MIRROR"
	mmdebstrap --quiet "${base_args[@]}" "$base_tar.tmp" "${mirrors[@]}" >&2
	mv "$base_tar.tmp" "$base_tar"
	say "base made in $(secs "$t0") s: $(du -m "$base_tar" | cut -f1) MB"
fi

# ---- 2. the base, imported ---------------------------------------------------------------
label_of() { # label_of IMAGE LABEL: its value, empty if no such image
	bah inspect --type image --format "{{index .OCIv1.Config.Labels \"$2\"}}" "$1" 2>/dev/null || true
}
tar_sum=$(sha256sum "$base_tar" | cut -c1-64)
if [ "$(label_of "$BASE_NAME" "$KEY_LABEL")" != "$tar_sum" ]; then
	t0=$(now)
	ctr=$(bah from scratch)
	trap 'bah rm "$ctr" >/dev/null 2>&1' EXIT
	bah add --quiet "$ctr" "$base_tar" / >/dev/null
	# the official image's configuration
	bah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		--cmd bash --label "$KEY_LABEL=$tar_sum" "$ctr"
	bah commit --quiet --format docker --rm "$ctr" "$BASE_NAME" >/dev/null
	trap - EXIT
	say "base imported as $BASE_NAME in $(secs "$t0") s"
fi
base_id=$(bah inspect --type image --format '{{.FromImageID}}' "$BASE_NAME")

# ---- 3. the image ------------------------------------------------------------------------
cd "$ROOT"
revision=$(git describe --always --dirty 2>/dev/null || true)
# The build context's files: what git knows of (tracked, or new and not
# ignored) less what .dockerignore's anchored patterns (no "**") exclude; a
# superset of the context is safe here (a needless build), a subset is not.
if git rev-parse --git-dir >/dev/null 2>&1; then
	all_files() { git ls-files -z --cached --others --exclude-standard; }
else
	all_files() { find . -type f -not -path './.git/*' -printf '%P\0'; }
fi
files() {
	all_files | python3 -c '
import fnmatch, os, sys
pats = [l.strip() for l in open(".dockerignore") if l.strip() and not l.startswith("#")]
pats = [p.strip("/") for p in pats if "**" not in p and not p.startswith("!")]
for f in sys.stdin.buffer.read().decode().split("\0"):
    parts = f.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    if f and os.path.isfile(f) and not any(
            fnmatch.fnmatchcase(q, p) and q.count("/") == p.count("/") for p in pats for q in prefixes):
        sys.stdout.write(f + "\0")
'
}
key=$( { files | LC_ALL=C sort -z | xargs -0 -r sha256sum; echo "base $base_id"; echo "revision $revision"; } |
	sha256sum | cut -c1-64)
old_id=$(bah inspect --type image --format '{{.FromImageID}}' "$NAME" 2>/dev/null || true)
if [ -n "$old_id" ] && [ "$(label_of "$NAME" "$KEY_LABEL")" = "$key" ]; then
	say "$NAME is up to date (build key ${key:0:12})"
else
	t0=$(now)
	say "building $NAME (revision ${revision:-unknown})"
	bah bud --quiet --format docker --isolation chroot --pull=never --layers=false \
		--build-arg "BASE=$BASE_NAME" --build-arg "REVISION=$revision" \
		--label "$KEY_LABEL=$key" -f deploy/spoke/Dockerfile -t "$NAME" . >&2
	say "image built in $(secs "$t0") s"
	# the image this one replaced, unless something still uses it
	new_id=$(bah inspect --type image --format '{{.FromImageID}}' "$NAME")
	[ -n "$old_id" ] && [ "$old_id" != "$new_id" ] && bah rmi "$old_id" >/dev/null 2>&1 || true
fi
id=$(bah inspect --type image --format '{{.FromImageID}}' "$NAME")
size=$(bah images --noheading --format '{{.Size}}' "$id" | head -1 | tr -d ' ')
say "$NAME: image ${id:0:12}, $size"
[ -z "$IIDFILE" ] || echo "$id" > "$IIDFILE"
echo "image $NAME $id $size"
