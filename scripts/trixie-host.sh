#!/usr/bin/env bash
# A Debian trixie host as a root file system entered with chroot: the lab's database host and
# the Molecule instance. debootstrap runs once; its result is cached as a tarball in .cache/.
#   trixie-host.sh create DIR   extract a fresh host into DIR (debootstrap first if not cached)
#   trixie-host.sh mount DIR    bind-mount /proc, /dev, /dev/pts (idempotent)
#   trixie-host.sh stop DIR     stop PostgreSQL clusters inside DIR, then any process left in it
#   trixie-host.sh umount DIR   undo mount
#   trixie-host.sh destroy DIR  stop, unmount, delete DIR
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=$PWD/.cache
TARBALL=$CACHE/trixie-minbase.tar
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

log() { echo "trixie-host: $*"; }
die() { echo "trixie-host: $*" >&2; exit 2; }

build_tarball() {
  [ -f "$TARBALL" ] && return
  local tmp; tmp=$(mktemp -d "$CACHE/debootstrap.XXXXXX"); chmod 755 "$tmp"
  log "debootstrap trixie (minbase), once; cached in $TARBALL"
  debootstrap --variant=minbase --include=python3,locales,ca-certificates,procps trixie "$tmp" "$MIRROR" \
    > "$CACHE/debootstrap.log" 2>&1 || { tail -20 "$CACHE/debootstrap.log"; rm -rf "$tmp"; exit 1; }
  # Services must not start on their own when packages install: we start them explicitly.
  printf '#!/bin/sh\nexit 101\n' > "$tmp/usr/sbin/policy-rc.d"; chmod +x "$tmp/usr/sbin/policy-rc.d"
  rm -rf "$tmp/var/cache/apt/archives/"*.deb
  tar -C "$tmp" -cf "$TARBALL.part" . && mv "$TARBALL.part" "$TARBALL"
  rm -rf "$tmp"
}

create() {
  local dir=$1
  if [ -f "$dir/.m2p-complete" ]; then log "$dir exists"; return; fi
  mkdir -p "$CACHE"; chmod 700 "$CACHE"
  build_tarball
  rm -rf "$dir"; mkdir -p "$dir"
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

umount_fs() {
  local dir=$1
  for d in dev/pts dev proc; do
    if mountpoint -q "$dir/$d" 2>/dev/null; then umount -l "$dir/$d"; fi
  done
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

[ $# -eq 2 ] || die "usage: scripts/trixie-host.sh create|mount|stop|umount|destroy DIR"
[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, chroot, mount)"
case "$1" in
  create) create "$2" ;;
  mount) mount_fs "$2" ;;
  stop) stop_all "$2" ;;
  umount) umount_fs "$2" ;;
  destroy)
    stop_all "$2"; umount_fs "$2"
    # --one-file-system: never follow a bind mount back into the real /dev or /proc.
    rm -rf --one-file-system "$2"; log "destroyed $2" ;;
  *) die "usage: scripts/trixie-host.sh create|mount|stop|umount|destroy DIR" ;;
esac
