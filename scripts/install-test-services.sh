#!/usr/bin/env bash
# The services integration tests start on loopback, installed where missing:
# PostgreSQL's server and Chromium (Debian packages; the dashboard's browser tests drive
# Chromium headless through Playwright) and Azurite, Microsoft's Azure Storage emulator (npm).
# moto (S3) and the GCS emulator come from PyPI with the dev extra.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && ! command -v initdb >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing PostgreSQL (Debian) for the integration tests"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q postgresql >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q postgresql >/dev/null; }
  else
    echo "the integration tests need PostgreSQL's server: apt-get install postgresql (as root)" >&2
    exit 1
  fi
fi

if [ ! -x /usr/bin/chromium ] && [ -z "${GRISTMILL_CHROMIUM:-}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Chromium (Debian) for the dashboard's browser tests"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q chromium >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
  else
    echo "the dashboard's browser tests need Chromium: apt-get install chromium (as root), or set GRISTMILL_CHROMIUM" >&2
    exit 1
  fi
fi

if [ ! -x .cache/azurite/node_modules/.bin/azurite-blob ]; then
  command -v npm >/dev/null || { echo "the integration tests need npm to install Azurite" >&2; exit 1; }
  echo "installing Azurite (npm) for the integration tests"
  npm install --silent --no-audit --no-fund --prefix .cache/azurite azurite@3 >/dev/null
fi
