#!/usr/bin/env bash
# A fresh database on the local Citus cluster, as the store needs it (decision 0025): the
# cluster of the Citus source's own script (`../shared/citus/cluster.sh`, or MERIDIAN_CITUS_DIR;
# started if it is not running, Citus built once per machine), the database created on every
# node with the extension and the coordinator's node list. Prints its URL, for
# `meridian serve --database-url` or a benchmark.
#
#   bench/citus/database.sh NAME [SHARDS]     (SHARDS a table, default 8: 2-4 per worker core)
set -euo pipefail
cd "$(dirname "$0")/../.."
name="$1"
shards="${2:-8}"
dir="${MERIDIAN_CITUS_DIR:-../shared/citus}"
[ -f "$dir/cluster.sh" ] || dir=/work/shared/citus
port="${CITUS_PORT:-9700}"
if ! pg_isready -q -h 127.0.0.1 -p "$port"; then
    CITUS_PORT="$port" bash "$dir/cluster.sh" start "${CITUS_DATA:-/tmp/meridian-citus-$port}" > /dev/null
fi
coordinator="postgres://postgres@127.0.0.1:$port"
psql -q "$coordinator/postgres" \
    -c "SET citus.enable_create_database_propagation = on" \
    -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" \
    -c "CREATE DATABASE $name ENCODING 'UTF8'" \
    -c "ALTER DATABASE $name SET citus.shard_count = $shards"
nodes=$(psql -qAt "$coordinator/postgres" -c \
    "SELECT nodename || ':' || nodeport || ':' || groupid FROM pg_dist_node WHERE noderole = 'primary' ORDER BY groupid")
for node in $nodes; do
    IFS=: read -r host node_port _ <<< "$node"
    psql -q "postgres://postgres@$host:$node_port/$name" -c "CREATE EXTENSION IF NOT EXISTS citus"
done
for node in $nodes; do
    IFS=: read -r host node_port group <<< "$node"
    if [ "$group" = 0 ]; then
        psql -qAt "$coordinator/$name" -c "SELECT citus_set_coordinator_host('$host', $node_port)" > /dev/null
    else
        psql -qAt "$coordinator/$name" -c "SELECT citus_add_node('$host', $node_port)" > /dev/null
    fi
done
echo "$coordinator/$name"
