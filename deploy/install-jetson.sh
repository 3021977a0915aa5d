#!/usr/bin/env bash
# Install Miragen on an NVIDIA Jetson with JetPack 6 (Jetson Linux r36, Python 3.10, CUDA 12).
#
#   sudo deploy/install-jetson.sh [--torch-wheel FILE|URL] [--torch-index URL] [--no-start]
#
# torch comes from NVIDIA's builds for JetPack 6 (PyPI's aarch64 wheels have no Jetson CUDA):
# by default from the Jetson AI Lab index (https://pypi.jetson-ai-lab.io/jp6/cu126); or give a
# wheel you downloaded from NVIDIA with --torch-wheel. Then deploy/install.sh does the rest
# (user, groups, config, udev rules, service), and a systemd drop-in allows the Jetson's GPU
# device nodes found on this board. See deploy/README.md for the UART and ALSA checks.
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TORCH_INDEX="https://pypi.jetson-ai-lab.io/jp6/cu126"
TORCH_WHEEL=""
PASS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --torch-wheel) TORCH_WHEEL="$2"; shift 2 ;;
    --torch-index) TORCH_INDEX="$2"; shift 2 ;;
    --no-start) PASS+=(--no-start); shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "install-jetson.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

say() { printf 'miragen install-jetson: %s\n' "$*"; }
die() { printf 'miragen install-jetson: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (sudo $0)"
[ "$(uname -m)" = aarch64 ] || die "this is not an aarch64 machine; use deploy/install.sh"
if [ -r /etc/nv_tegra_release ]; then
  release="$(head -n1 /etc/nv_tegra_release)"
  case "$release" in
    *"R36"*) say "Jetson Linux: $release" ;;
    *) say "warning: $release is not JetPack 6 (r36); NVIDIA's torch wheel must match your JetPack" ;;
  esac
else
  die "/etc/nv_tegra_release not found: not a Jetson (use deploy/install.sh)"
fi
python3 -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 10) else 1)' \
  || say "warning: JetPack 6's Python is 3.10; NVIDIA's torch wheels are built for it"
command -v nvpmodel >/dev/null && say "power mode: $(nvpmodel -q 2>/dev/null | head -n1 || echo unknown)"

# python-rtmidi builds from source where no aarch64 wheel matches: it needs the ALSA headers.
if command -v apt-get >/dev/null; then
  say "installing python3-venv, python3-dev and libasound2-dev (for python-rtmidi)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    python3-venv python3-dev libasound2-dev build-essential >/dev/null \
    || die "apt-get could not install python3-venv python3-dev libasound2-dev build-essential"
fi

if [ -n "$TORCH_WHEEL" ]; then
  "$SRC/deploy/install.sh" --python python3 --torch-wheel "$TORCH_WHEEL" --no-start
else
  "$SRC/deploy/install.sh" --python python3 --torch-index "$TORCH_INDEX" --no-start
fi

/opt/miragen/venv/bin/python -c 'import torch; print("torch", torch.__version__, "CUDA", torch.cuda.is_available())' \
  || die "torch does not import in /opt/miragen/venv"

# The Jetson GPU nodes that are misc devices (nvmap, nvhost-*, nvgpu) are allowed by path.
dropin=/etc/systemd/system/miragen.service.d
install -d -m 0755 "$dropin"
{
  echo "# Written by deploy/install-jetson.sh: the GPU device nodes of this Jetson."
  echo "[Service]"
  for node in /dev/nvmap /dev/nvhost-* /dev/nvgpu/*/* /dev/nvidia* /dev/dri/renderD*; do
    if [ -c "$node" ]; then echo "DeviceAllow=$node rw"; fi
  done
} > "$dropin/jetson-gpu.conf"
say "allowed $(grep -c DeviceAllow "$dropin/jetson-gpu.conf") GPU device nodes ($dropin/jetson-gpu.conf)"

# The on-board UART (ttyTHS*) must not be a serial console for MIDI at 31,250 baud.
if systemctl is-enabled nvgetty.service >/dev/null 2>&1; then
  say "nvgetty.service (serial console on ttyTHS0) is enabled; disable it to use that UART for MIDI:"
  say "  systemctl disable --now nvgetty.service"
fi

systemctl daemon-reload
if [ "${#PASS[@]}" -eq 0 ]; then
  systemctl enable --now miragen.service miragen-web.service
  systemctl --no-pager --lines=5 status miragen.service miragen-web.service || true
fi
say "done. Check the MIDI ports and the UART as deploy/README.md explains."
