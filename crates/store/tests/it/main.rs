//! The store contract: what every backend must do, run unchanged against each of them, each
//! test on a fresh database (see `test_support::contract_tests!`), and on a Citus cluster.

mod support;

mod checkpoints;
mod history;
mod jobs;
mod paging;
mod search;
mod writes;
