#!/bin/sh
# Install the system packages the lab needs (stunnel4, openssh-server, python3-venv;
# pebble for the ACME lab; strace for the tests),
# with apt-get when run as root; otherwise say exactly what to install.
set -eu

missing=""
command -v stunnel4 >/dev/null 2>&1 || missing="$missing stunnel4"
{ command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ]; } || missing="$missing openssh-server"
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
# The tests of files on the hosts read every file operation of an apply from the kernel.
command -v strace >/dev/null 2>&1 || missing="$missing strace"
# The ACME lab's CA: Pebble and pebble-challtestsrv (one Debian package).
{ command -v pebble >/dev/null 2>&1 && command -v pebble-challtestsrv >/dev/null 2>&1; } \
  || missing="$missing pebble"
PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 || missing="$missing python3-venv"

[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing system packages:$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086 # word splitting of the package list is intended
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
  exit 0
fi

echo "wlbplan's lab needs these system packages:$missing" >&2
echo "Install them, then run make again:  sudo apt-get install$missing" >&2
exit 1
