//! The analytics crate's integration tests: the official SQL on FHIR v2 suite, the behaviour
//! it does not cover (views refused, errors, hostile views, column types), views mutated at
//! random, and with the `parquet` feature the Parquet files written.

mod official;
#[cfg(feature = "parquet")]
mod parquet_file;
mod robustness;
mod suite;
mod views;
