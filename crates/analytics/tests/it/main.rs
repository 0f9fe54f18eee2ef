//! The analytics crate's integration tests: the official SQL on FHIR v2 suite, the behaviour
//! it does not cover (views refused, errors, hostile views, column types), views mutated at
//! random, and with the `parquet` feature the Parquet files written.

#[cfg(feature = "parquet")]
mod dataset;
mod official;
#[cfg(feature = "parquet")]
mod parquet_file;
// A Python virtual environment for the pyarrow, pandas and DuckDB check.
#[cfg(feature = "parquet")]
#[path = "../../../test-support/shared/python_venv.rs"]
mod python_venv;
mod robustness;
mod stored;
mod suite;
mod views;
