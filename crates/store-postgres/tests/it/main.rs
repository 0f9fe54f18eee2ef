//! PostgreSQL-specific behaviour beyond the store contract (which `crates/store/tests` runs on
//! both backends): migrations, concurrent writers, the connection pool, bulk writes, reads
//! compared with the SQLite store where the contract suite has no test yet, and the store
//! distributed on a Citus cluster.

mod support;

mod citus;
mod concurrency;
mod migrations;
mod pool;
mod same_as_sqlite;
mod schema;
mod statistics;
mod writes;
