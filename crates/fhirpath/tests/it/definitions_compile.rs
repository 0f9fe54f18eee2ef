//! Every FHIRPath expression in the R4 definitions compiles: the search parameters (with and
//! without their base type as context) and the invariants of every type.
