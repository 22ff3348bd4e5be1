#!/bin/sh
# Installs what the benchmarks compare against, when it is missing:
#   dqlite-benchmark (Debian package go-dqlite) for `bench_db --vs-dqlite`.
# Idempotent: does nothing when everything is already installed. Needs root
# (apt-get); no sudo is used.
set -eu

if command -v dqlite-benchmark >/dev/null 2>&1; then
    echo "dqlite-benchmark: already installed at $(command -v dqlite-benchmark)"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "dqlite-benchmark is missing and installing it needs root: run this script as root" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "dqlite-benchmark is missing and apt-get is not available: install go-dqlite by hand" >&2
    exit 1
fi

echo "dqlite-benchmark: missing; installing the Debian package go-dqlite with apt-get"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends go-dqlite; then
    echo "apt-get install failed; refreshing the package lists and retrying"
    apt-get update
    apt-get install -y --no-install-recommends go-dqlite
fi

if command -v dqlite-benchmark >/dev/null 2>&1; then
    echo "dqlite-benchmark: installed at $(command -v dqlite-benchmark) (package go-dqlite $(dpkg-query -W -f='${Version}' go-dqlite 2>/dev/null || echo '?'))"
else
    echo "go-dqlite is installed but provides no dqlite-benchmark on PATH" >&2
    exit 1
fi
