mod messages;
mod v2_mapping;
