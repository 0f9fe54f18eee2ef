//! The public API: what items expose, the environment's defaults and hooks.
