#!/usr/bin/env bash
# Remove the Miragen service: stops and disables it, removes the unit, its drop-ins, the udev
# rules and PREFIX (the code). It never deletes what you made: the state folder
# (/var/lib/miragen: corpus, models, generated sounds) and /etc/miragen stay unless you pass
# --purge. The user `miragen` stays too (files may belong to it) unless --purge.
#
#   sudo deploy/uninstall.sh [--prefix /opt/miragen] [--purge]
set -euo pipefail
PREFIX=/opt/miragen
PURGE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX="$2"; shift 2 ;;
    --purge) PURGE=1; shift ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "uninstall.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "uninstall.sh: run as root" >&2; exit 1; }
systemctl disable --now miragen-web.service miragen.service 2>/dev/null || true
rm -f /etc/systemd/system/miragen.service /etc/systemd/system/miragen-web.service
rm -rf /etc/systemd/system/miragen.service.d
systemctl daemon-reload || true
rm -f /etc/udev/rules.d/99-miragen.rules
command -v udevadm >/dev/null && udevadm control --reload-rules || true
case "$PREFIX" in
  /|/usr|/usr/*|/etc|/var|/home) echo "uninstall.sh: refusing to remove $PREFIX" >&2; exit 1 ;;
esac
rm -rf "$PREFIX"
if [ "$PURGE" -eq 1 ]; then
  rm -rf /var/lib/miragen /etc/miragen
  userdel miragen 2>/dev/null || true
  echo "miragen uninstall: removed the code, the configuration, the state folder and the user"
else
  echo "miragen uninstall: removed the service and the code; kept /var/lib/miragen and /etc/miragen (--purge removes them)"
fi
