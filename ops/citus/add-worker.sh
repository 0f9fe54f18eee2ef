#!/usr/bin/env bash
# Adds a worker to the Citus cluster that holds a Meridian database, and moves shards onto it,
# while the platform serves (docs/citus.md, "Adding a worker while the platform serves").
#
#   ops/citus/add-worker.sh DATABASE_URL HOST:PORT
#
# DATABASE_URL is the database `meridian serve --database-url` uses (on the coordinator);
# HOST:PORT a running PostgreSQL 15 with Citus preloaded (`shared_preload_libraries = 'citus'`),
# reachable from the coordinator and the other workers as the same user. Citus keeps its
# metadata per database, so the database and the extension are made on the new worker first,
# then the node is added to the database's metadata, then the rebalancer moves shard groups
# (the patient-data tables and their index tables move together, the locator's on its own;
# reference tables are copied to the new node first), and the shards per node are printed.
#
# SHARD_TRANSFER_MODE (default block_writes): how a shard group is copied. The index tables
# have no primary key, so Citus cannot move them by logical replication (`force_logical`);
# with `block_writes` a write to a resident on a shard group being copied waits until the copy
# ends (a second or two for a small store; plan the rebalance of a large one for a quiet hour),
# and reads go on. Nothing fails.
set -euo pipefail
[ $# -eq 2 ] || { sed -n '2,8p' "$0" >&2; exit 2; }
url="$1"
node="$2"
host="${node%:*}"
port="${node##*:}"
mode="${SHARD_TRANSFER_MODE:-block_writes}"
database="${url##*/}"
database="${database%%\?*}"
server="${url%/*}"
user="${server#*://}"
user="${user%%@*}"
[ "$user" != "${server#*://}" ] || user=postgres
user="${user%%:*}"
worker="postgres://$user@$host:$port"

echo "adding $host:$port to database $database"
if [ -z "$(psql -qAt "$worker/postgres" -c "SELECT 1 FROM pg_database WHERE datname = '$database'")" ]; then
    psql -q "$worker/postgres" -c "CREATE DATABASE \"$database\" ENCODING 'UTF8'"
fi
psql -q "$worker/$database" -c "CREATE EXTENSION IF NOT EXISTS citus"
psql -qAt "$url" -c "SELECT citus_add_node('$host', $port)" > /dev/null

# The moves run in this session (`rebalance_table_shards`), not as Citus's background job
# (`citus_rebalance_start`): a background job needs a free background worker on the
# coordinator, which a cluster with many databases (each has a maintenance daemon) may not have
# (`max_worker_processes`), and then waits unseen.
echo "moving shards onto it ($mode)"
psql -q "$url" -c "SELECT rebalance_table_shards(shard_transfer_mode := '$mode')"
echo "rebalanced"
psql -q "$url" -c "SELECT n.nodename || ':' || n.nodeport AS node, count(*) AS shards
    FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid)
    GROUP BY 1 ORDER BY 1"
