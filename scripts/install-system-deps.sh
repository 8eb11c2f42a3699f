#!/usr/bin/env bash
# Installs the system tools the C-export tests need: host gcc, the ARM cross toolchain and QEMU.
# Needs root and apt; elsewhere it says what is missing and the tests that need it skip with a
# reason (or fail when CI=true).
set -u
need=()
command -v gcc >/dev/null 2>&1 || need+=(gcc)
command -v arm-none-eabi-gcc >/dev/null 2>&1 || need+=(gcc-arm-none-eabi libnewlib-arm-none-eabi)
command -v qemu-system-arm >/dev/null 2>&1 || need+=(qemu-system-arm)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: missing ${need[*]} (need root + apt to install); the tests that need them will skip" >&2
  exit 0
fi
echo "installing ${need[*]} ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
