//! The workflow service against both stores: the Task state machine under real callers and
//! the real access rules, atomic booking under concurrent writers, follow-ups and deadlines.

mod workflows;
