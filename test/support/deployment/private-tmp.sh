#!/usr/bin/env bash
# Runs a command with a /tmp of its own, as Lambda gives each execution environment: inside a private mount namespace
# (unshare --mount, as root), an empty tmpfs over /tmp, with only the directories the command reads from bound back in,
# read-only. Nothing the command writes to /tmp is seen by the machine or by another container.
# Usage: private-tmp.sh <size MiB> <directory under /tmp to keep>... -- <command> [args...]
set -euo pipefail
size=$1
shift
dirs=()
fds=()
# A handle on each directory to show again, opened before the tmpfs hides it.
while [ "$1" != "--" ]; do
  exec {fd}<"$1"
  dirs+=("$1")
  fds+=("$fd")
  shift
done
shift
mount -t tmpfs -o "size=${size}m,mode=1777" lambda-tmp /tmp
for i in "${!dirs[@]}"; do
  mkdir -p "${dirs[$i]}"
  mount --no-canonicalize --bind "/proc/self/fd/${fds[$i]}" "${dirs[$i]}"
  mount -o remount,bind,ro "${dirs[$i]}"
  eval "exec ${fds[$i]}<&-"
done
exec "$@"
