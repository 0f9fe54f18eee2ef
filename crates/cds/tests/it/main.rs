//! The decision-support service's tests: hook requests as clients send them (the spec's and
//! the validator's examples, and malformed ones), every shipped rule firing and not firing,
//! and recognition with its metrics on a real store of each backend.

mod recognition;
mod requests;
mod rules;
