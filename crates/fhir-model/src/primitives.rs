//! The lexical rules of the FHIR R4 primitive types, as the specification's regular expressions
//! state them, checked by hand-written scanners.
