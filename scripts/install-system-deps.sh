#!/usr/bin/env bash
# Installs the Debian packages kyso and its tests need, only those that are missing.
# Called by `make install` (and so by `make run` and `make test`); safe to run again.
set -euo pipefail
# openssl, softhsm2: PKI and keystore; fonts-liberation2: Liberation Serif 2.x (metric-compatible with
# Times New Roman, with every Vietnamese letter; 1.x lacks them) embedded in visible signatures; poppler-utils, qpdf, zbar-tools, libnss3-tools,
# libnss3-dev, libnspr4-dev, gcc: the interop tests (pdfsig with its trust shim, qpdf --check,
# pdftoppm + zbarimg for the QR code, pdftotext); chromium: the citizen page's browser tests (Playwright drives
# Debian's Chromium, never a downloaded browser); default-jdk-headless, php-cli, php-curl: the integrator
# guide's Java and PHP examples run against a live server (tests/interop/test_integration_examples.py).
packages=(openssl ca-certificates softhsm2 fonts-liberation2 poppler-utils qpdf zbar-tools
          libnss3-tools libnss3-dev libnspr4-dev gcc libc6-dev chromium
          default-jdk-headless php-cli php-curl)
# python3-venv only when the interpreter cannot make virtual environments by itself (Debian's python3)
python3 -c "import ensurepip, venv" 2>/dev/null || packages+=(python3-venv)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "kyso: installing Debian packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
