//! The identity crate: comparators and the model on their own, then the master patient index
//! and the health code over a real store.

mod support;

mod comparators;
mod health_code;
mod learning;
mod matching;
mod mpi;
