#!/usr/bin/env bash
# Installs the Debian packages of the database servers the tests start (the same ones
# test/harness installs on demand), so a machine or CI job can do it ahead of the run.
# Honours BACKFLOW_TEST_SERVERS (comma list of postgres, mariadb, clickhouse; default all;
# "none" for none). Installs only what is missing; uses sudo when not root.
set -euo pipefail

servers="${BACKFLOW_TEST_SERVERS:-postgres,mariadb,clickhouse}"
[[ "$servers" == "all" ]] && servers="postgres,mariadb,clickhouse"
[[ "$servers" == "none" ]] && exit 0

has_postgres() { compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; }
has_mariadb() { [[ -x /usr/sbin/mariadbd || -x /usr/bin/mariadbd ]]; }
has_clickhouse() { [[ -x /usr/sbin/clickhouse-server || -x /usr/bin/clickhouse-server ]]; }

missing=()
IFS=',' read -ra names <<<"$servers"
for name in "${names[@]}"; do
  name="${name// /}"
  case "$name" in
    postgres) has_postgres || missing+=(postgresql) ;;
    mariadb) has_mariadb || missing+=(mariadb-server) ;;
    clickhouse) has_clickhouse || missing+=(clickhouse-server) ;;
    '') ;;
    *)
      echo "test-servers-install: unknown server '$name' in BACKFLOW_TEST_SERVERS" >&2
      exit 2
      ;;
  esac
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "test-servers-install: nothing to install"
  exit 0
fi

sudo=()
[[ $(id -u) -eq 0 ]] || sudo=(sudo)
echo "test-servers-install: installing ${missing[*]}"
start=$SECONDS
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q \
  --no-install-recommends "${missing[@]}"
echo "test-servers-install: done in $((SECONDS - start)) s"
