#!/usr/bin/env bash
# Install Miragen as a systemd service on a generic Linux machine (Debian/Ubuntu/Fedora/Arch...).
#
#   sudo deploy/install.sh [--prefix /opt/miragen] [--torch-index URL | --torch-wheel FILE|URL]
#                          [--python python3] [--no-start]
#
# What it does (see deploy/README.md):
#   1. the system user `miragen` (no login, home /var/lib/miragen) in the groups dialout, audio
#      and video (those that exist);
#   2. a virtual environment in PREFIX/venv with torch and Miragen from this source tree;
#   3. /etc/miragen/miragen.toml from deploy/miragen.toml (an existing one is kept, and checked);
#   4. udev rules /etc/udev/rules.d/99-miragen.rules (USB-MIDI, USB-serial, Jetson UART);
#   5. /etc/systemd/system/miragen.service, enabled and started (unless --no-start);
#   6. /etc/systemd/system/miragen-web.service (the studio page, on 127.0.0.1:8808 unless
#      [web] listen says otherwise) and its token (/var/lib/miragen/web-token, mode 0600:
#      `miragen web token` prints it), enabled and started likewise.
# Re-running it upgrades the code and keeps the configuration and the state folder.
set -euo pipefail

PREFIX=/opt/miragen
PYTHON=python3
TORCH_INDEX=""
TORCH_WHEEL=""
START=1
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX="$2"; shift 2 ;;
    --python) PYTHON="$2"; shift 2 ;;
    --torch-index) TORCH_INDEX="$2"; shift 2 ;;
    --torch-wheel) TORCH_WHEEL="$2"; shift 2 ;;
    --no-start) START=0; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

say() { printf 'miragen install: %s\n' "$*"; }
die() { printf 'miragen install: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (sudo $0)"
command -v systemctl >/dev/null || die "systemd is required (systemctl not found)"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
  || die "$PYTHON is older than 3.10; install Python ≥ 3.10 or pass --python"
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null \
  || die "$PYTHON lacks venv/ensurepip (Debian/Ubuntu: apt-get install python3-venv)"

# 1. the user and its groups
if ! id miragen >/dev/null 2>&1; then
  say "creating the system user miragen"
  useradd --system --user-group --home-dir /var/lib/miragen --no-create-home \
          --shell /usr/sbin/nologin --comment "Miragen daemon" miragen
fi
for g in dialout audio video; do
  if getent group "$g" >/dev/null; then usermod -a -G "$g" miragen; else say "group $g does not exist here; skipped"; fi
done

# 2. the code
say "installing into $PREFIX/venv (this takes a while the first time)"
mkdir -p "$PREFIX"
[ -x "$PREFIX/venv/bin/python" ] || "$PYTHON" -m venv "$PREFIX/venv"
PIP="$PREFIX/venv/bin/pip"
"$PIP" install --quiet --upgrade pip
if [ -n "$TORCH_WHEEL" ]; then
  "$PIP" install --quiet "$TORCH_WHEEL"
elif [ -n "$TORCH_INDEX" ]; then
  "$PIP" install --quiet --index-url "$TORCH_INDEX" torch
elif ! "$PREFIX/venv/bin/python" -c 'import torch' 2>/dev/null; then
  "$PIP" install --quiet torch
fi
"$PIP" install --quiet "$SRC"
mkdir -p "$PREFIX/docs"
cp "$SRC"/docs/*.md "$PREFIX/docs/" 2>/dev/null || true
cp "$SRC/deploy/README.md" "$PREFIX/docs/deploy.md"

# 3. the configuration (never overwritten)
install -d -m 0755 /etc/miragen
if [ ! -e /etc/miragen/miragen.toml ]; then
  install -m 0644 "$SRC/deploy/miragen.toml" /etc/miragen/miragen.toml
  say "wrote /etc/miragen/miragen.toml (edit it, then: systemctl restart miragen)"
else
  say "kept the existing /etc/miragen/miragen.toml"
fi
"$PREFIX/venv/bin/miragen" config check /etc/miragen/miragen.toml \
  || die "/etc/miragen/miragen.toml has problems (listed above); fix them and run this again"

# 4. udev rules
install -m 0644 "$SRC/deploy/99-miragen.rules" /etc/udev/rules.d/99-miragen.rules
if command -v udevadm >/dev/null; then
  udevadm control --reload-rules || true
  udevadm trigger --subsystem-match=tty --subsystem-match=sound || true
fi

# 5. and 6. the services, and the web page's token (made once, readable by miragen only)
for unit in miragen.service miragen-web.service; do
  sed "s#/opt/miragen#$PREFIX#g" "$SRC/systemd/$unit" > "/etc/systemd/system/$unit"
  chmod 0644 "/etc/systemd/system/$unit"
done
install -d -o miragen -g miragen -m 0750 /var/lib/miragen
runuser -u miragen -- "$PREFIX/venv/bin/miragen" web token --config /etc/miragen/miragen.toml \
  > /dev/null || die "could not make the web token (see above)"
systemctl daemon-reload
if [ "$START" -eq 1 ]; then
  systemctl enable --now miragen.service miragen-web.service
  systemctl --no-pager --lines=5 status miragen.service miragen-web.service || true
  say "running. Drop sounds into /var/lib/miragen/inbox/<class>/; 'miragen status --config /etc/miragen/miragen.toml' shows what it does"
  say "studio page: http://127.0.0.1:8808/ on this machine (docs/web.md: from another machine)"
else
  systemctl enable miragen.service miragen-web.service
  say "installed and enabled; start them with: systemctl start miragen miragen-web"
fi
