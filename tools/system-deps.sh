#!/usr/bin/env bash
# System libraries the Python wheels load at run time (OpenCV/MediaPipe: libGL, GLib; Qt: EGL,
# xkbcommon, fontconfig, D-Bus; Qt Multimedia, for the panel's dub audio playback: PulseAudio's client
# library, which libQt6Multimedia links against even where no sound server runs) plus tcmalloc, which
# halves CPU training step time.
# Installs only what is missing, with apt-get (as root, or through sudo when available).
set -euo pipefail
packages=(libgl1 libglib2.0-0 libegl1 libxkbcommon0 libfontconfig1 libdbus-1-3 libpulse0 libtcmalloc-minimal4)
command -v dpkg-query >/dev/null 2>&1 || { echo "system-deps: not a Debian/Ubuntu system; install the equivalents of: ${packages[*]}"; exit 0; }
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
python=${PYTHON:-python3}
"$python" -c "import venv, ensurepip" 2>/dev/null || missing+=("python3-venv")
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "system-deps: please install as root: apt-get install ${missing[*]}"; exit 1; }
  sudo="sudo"
fi
echo "system-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
