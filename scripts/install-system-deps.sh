#!/usr/bin/env bash
# Installs the Debian packages kyso needs, only those that are missing; safe to run again.
#   scripts/install-system-deps.sh          what running kyso needs (`make install`, so `make run`)
#   scripts/install-system-deps.sh --test   that, and what the tests need (`make install-test`, so `make test`)
set -euo pipefail
# Running: openssl and ca-certificates (the PKI tools an operator uses next to kyso); fonts-liberation2:
# Liberation Serif 2.x (metric-compatible with Times New Roman, with every Vietnamese letter; 1.x lacks them)
# embedded in visible signatures; jq: the documented API examples read JSON answers with it.
packages=(openssl ca-certificates fonts-liberation2 jq)
if [ "${1:-}" = "--test" ]; then
  # Testing: softhsm2 (the PKCS#11 keystore tests); poppler-utils, qpdf, zbar-tools, libnss3-tools,
  # libnss3-dev, libnspr4-dev, gcc: the interop tests (pdfsig with its trust shim, qpdf --check,
  # pdftoppm + zbarimg for the QR code, pdftotext); chromium: the browser tests (Playwright drives Debian's
  # Chromium, never a downloaded browser); systemd: `systemd-analyze verify` checks the documented unit file;
  # openjdk-17-jdk-headless (Debian 12's JDK), php-cli, php-curl: the integrator guide's Java and PHP examples run against a live
  # server (tests/interop/test_integration_examples.py); golang-go, golang-golang-x-mod-dev: Go's x/mod
  # sumdb/tlog and sumdb/note, built offline into a small checker that verifies the transparency log
  # (tests/helpers/tlogcheck), a verifier kyso did not write.
  packages+=(softhsm2 poppler-utils qpdf zbar-tools libnss3-tools libnss3-dev libnspr4-dev gcc libc6-dev chromium
             systemd openjdk-17-jdk-headless php-cli php-curl golang-go golang-golang-x-mod-dev)
fi
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
