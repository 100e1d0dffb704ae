#!/usr/bin/env bash
# A Debian trixie host as a root file system entered with chroot: the lab's database host and
# the Molecule instance. debootstrap runs once; its result is cached as a tarball in .cache/.
#   trixie-host.sh create DIR   extract a fresh host into DIR (debootstrap first if not cached)
#   trixie-host.sh mount DIR    bind-mount /proc, /dev, /dev/pts (idempotent)
#   trixie-host.sh stop DIR     stop PostgreSQL clusters inside DIR, then any process left in it
#   trixie-host.sh umount DIR   unmount everything mounted under DIR, deepest first
#   trixie-host.sh archive DIR TAR  pack DIR (its own file system only) into TAR, after unmounting under it
#   trixie-host.sh destroy DIR  stop, unmount, delete DIR
# No removal here ever deletes through a mount: whatever is mounted under a tree is unmounted first
# (lazily if busy, checked against /proc/self/mountinfo), and a removal refuses while one remains.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=$PWD/.cache
TARBALL=$CACHE/trixie-minbase.tar
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

log() { echo "trixie-host: $*"; }
die() { echo "trixie-host: $*" >&2; exit 2; }

# Mount points at or under DIR, deepest first (from /proc/self/mountinfo; \040 and the like decoded).
mounts_under() {
  local real; real=$(readlink -f "$1")
  awk -v root="$real" '{
      p = $5
      while (match(p, /\\[0-7][0-7][0-7]/)) {
        c = sprintf("%c", (substr(p, RSTART+1, 1) * 64) + (substr(p, RSTART+2, 1) * 8) + substr(p, RSTART+3, 1))
        p = substr(p, 1, RSTART-1) c substr(p, RSTART+4)
      }
      if (p == root || index(p, root "/") == 1) print length(p) "\t" p
    }' /proc/self/mountinfo | sort -rn | cut -f2-
}

unmount_all() {
  local dir=$1 m
  [ -e "$dir" ] || return 0
  while IFS= read -r m; do
    [ -n "$m" ] || continue
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done < <(mounts_under "$dir")
}

# Delete a host tree, never through a mount.
safe_remove() {
  local dir=$1 left
  [ -e "$dir" ] || return 0
  unmount_all "$dir"
  left=$(mounts_under "$dir")
  [ -z "$left" ] || die "refusing to delete $dir: still mounted inside it: $(echo $left)"
  rm -rf --one-file-system "$dir"
}

archive_tree() {
  local dir=$1 tarball=$2 left
  unmount_all "$dir"
  left=$(mounts_under "$dir")
  [ -z "$left" ] || die "refusing to archive $dir: still mounted inside it: $(echo $left)"
  tar -C "$dir" --one-file-system -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
}

build_tarball() {
  [ -f "$TARBALL" ] && return
  local tmp; tmp=$(mktemp -d "$CACHE/debootstrap.XXXXXX"); chmod 755 "$tmp"
  log "debootstrap trixie (minbase), once; cached in $TARBALL"
  debootstrap --variant=minbase --include=python3,locales,ca-certificates,procps trixie "$tmp" "$MIRROR" \
    > "$CACHE/debootstrap.log" 2>&1 || { tail -20 "$CACHE/debootstrap.log"; safe_remove "$tmp"; exit 1; }
  # Services must not start on their own when packages install: we start them explicitly.
  printf '#!/bin/sh\nexit 101\n' > "$tmp/usr/sbin/policy-rc.d"; chmod +x "$tmp/usr/sbin/policy-rc.d"
  rm -rf "$tmp/var/cache/apt/archives/"*.deb
  # debootstrap can leave /proc (or more) mounted inside its target: never archive or delete through it.
  archive_tree "$tmp" "$TARBALL"
  safe_remove "$tmp"
}

create() {
  local dir=$1
  if [ -f "$dir/.m2p-complete" ]; then log "$dir exists"; return; fi
  mkdir -p "$CACHE"; chmod 700 "$CACHE"
  build_tarball
  safe_remove "$dir"; mkdir -p "$dir"
  tar -C "$dir" -xf "$TARBALL"
  chmod 755 "$dir"  # the host's / : every user inside must be able to traverse it
  touch "$dir/.m2p-complete"
  log "created $dir"
}

mount_fs() {
  local dir=$1
  for d in proc dev dev/pts; do
    mountpoint -q "$dir/$d" || mount --bind "/$d" "$dir/$d"
  done
  mkdir -p "$dir/dev/shm"
}


stop_all() {
  local dir=$1
  if [ -x "$dir/usr/bin/pg_ctlcluster" ] && mountpoint -q "$dir/proc" 2>/dev/null; then
    for c in $(chroot "$dir" pg_lsclusters -h 2>/dev/null | awk '$4 ~ /^online/{print $1"/"$2}'); do
      chroot "$dir" pg_ctlcluster "${c%/*}" "${c#*/}" stop -m fast && log "PostgreSQL $c stopped"
    done
  fi
  # Anything else still running with its root inside DIR (a stray server, a cron job).
  local real; real=$(readlink -f "$dir")
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$real" ] && kill -9 "${p#/proc/}" 2>/dev/null || true
  done
}

USAGE="usage: scripts/trixie-host.sh create|mount|stop|umount|destroy DIR, or archive DIR TARBALL"
[ $# -eq 2 ] || { [ $# -eq 3 ] && [ "$1" = archive ]; } || die "$USAGE"
[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, chroot, mount)"
case "$1" in
  create) create "$2" ;;
  mount) mount_fs "$2" ;;
  stop) stop_all "$2" ;;
  umount) unmount_all "$2" ;;
  archive) archive_tree "$2" "$3"; log "archived $2 into $3" ;;
  destroy) stop_all "$2"; safe_remove "$2"; log "destroyed $2" ;;
  *) die "$USAGE" ;;
esac
