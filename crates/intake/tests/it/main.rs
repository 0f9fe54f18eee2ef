mod v2_mapping;
