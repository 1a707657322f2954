#!/usr/bin/env bash
# The PostgreSQL 15 server and pgvector that test/pg_server.ts starts a throwaway cluster of.
# Idempotent, as root: Debian's postgresql-15 and postgresql-server-dev-15 when absent, then pgvector
# built from ../shared/vendor/pgvector-0.8.6 (its source, read-only in CI: built from a copy in a
# temporary folder) and installed into PostgreSQL 15, unless vector.control is there already.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_MAJOR=15
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
PG_CONFIG=$PG_BIN/pg_config
PGVECTOR_SRC=${PGVECTOR_SRC:-../shared/vendor/pgvector-0.8.6}

need=()
[ -x "$PG_BIN/postgres" ] || need+=("postgresql-$PG_MAJOR")
[ -x "$PG_CONFIG" ] && [ -f "$("$PG_CONFIG" --includedir-server 2>/dev/null)/postgres.h" ] || need+=("postgresql-server-dev-$PG_MAJOR")
command -v make >/dev/null && command -v gcc >/dev/null || need+=(build-essential)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup-postgres: installing ${need[*]}"
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"
fi

ext_dir=$("$PG_CONFIG" --sharedir)/extension
if [ -f "$ext_dir/vector.control" ] && [ -f "$("$PG_CONFIG" --pkglibdir)/vector.so" ]; then
  echo "setup-postgres: pgvector already installed ($(sed -n "s/^default_version = '\(.*\)'/\1/p" "$ext_dir/vector.control"))"
  exit 0
fi
if [ ! -f "$PGVECTOR_SRC/vector.control" ]; then
  echo "setup-postgres: no pgvector source at $PGVECTOR_SRC" >&2
  exit 1
fi
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
cp -r "$PGVECTOR_SRC" "$build/pgvector"
chmod -R u+w "$build/pgvector"
# OPTFLAGS="" : no -march=native, so the library runs on any x86-64 the cluster may move to.
make -C "$build/pgvector" PG_CONFIG="$PG_CONFIG" OPTFLAGS="" -j2 >"$build/make.log" 2>&1 || { tail -50 "$build/make.log" >&2; exit 1; }
make -C "$build/pgvector" PG_CONFIG="$PG_CONFIG" OPTFLAGS="" install >>"$build/make.log" 2>&1 || { tail -50 "$build/make.log" >&2; exit 1; }
echo "setup-postgres: pgvector installed into $ext_dir"
