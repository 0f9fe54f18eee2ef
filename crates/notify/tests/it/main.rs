//! The notification service against both stores: events numbered from the change log under
//! each subscriber's rules, without a gap, across a restart of the consumer.

mod events;
