//! PostgreSQL-specific behaviour beyond the store contract (which `crates/store/tests` runs on
//! both backends): migrations, concurrent writers, the connection pool, bulk writes.

mod support;

mod concurrency;
mod migrations;
mod pool;
mod writes;
