//! The HL7 v2 reader against messages written by others (the vendored corpus: 160 messages,
//! versions 2.3 to 2.8, batch and file envelopes, six malformed envelopes), round trips through
//! the encoder, character sets, acknowledgements and MLLP framing.

mod corpus;
mod messages;
