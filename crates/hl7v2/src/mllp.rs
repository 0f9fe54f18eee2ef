//! MLLP, the Minimal Lower Layer Protocol: each message travels as `<VT> payload <FS><CR>`
//! (0x0B, then 0x1C 0x0D) over TCP. [`Decoder`] takes bytes as they arrive and hands back whole
//! payloads; bytes outside a frame are dropped (a sender's stray line ends), and a frame larger
//! than the limit is an error, so a sender cannot make the receiver buffer without end.

/// Start of block.
pub const START: u8 = 0x0B;
/// End of block, then a carriage return.
pub const END: [u8; 2] = [0x1C, 0x0D];

/// `payload` framed for the wire.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut framed = Vec::with_capacity(payload.len() + 3);
    framed.push(START);
    framed.extend_from_slice(payload);
    framed.extend_from_slice(&END);
    framed
}

/// A frame over the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an MLLP frame is larger than {0} bytes")]
pub struct FrameTooLarge(pub usize);

/// Reassembles frames from a stream.
#[derive(Debug)]
pub struct Decoder {
    buffer: Vec<u8>,
    /// Inside a frame (its start seen).
    open: bool,
    max: usize,
}

impl Decoder {
    /// A decoder refusing frames over `max` bytes.
    pub fn new(max: usize) -> Decoder {
        Decoder {
            buffer: Vec::new(),
            open: false,
            max,
        }
    }

    /// Takes the bytes that arrived; answers the payloads completed by them, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, FrameTooLarge> {
        let mut frames = Vec::new();
        for &byte in bytes {
            if !self.open {
                if byte == START {
                    self.open = true;
                    self.buffer.clear();
                }
                continue;
            }
            if byte == END[1] && self.buffer.last() == Some(&END[0]) {
                self.buffer.pop();
                frames.push(std::mem::take(&mut self.buffer));
                self.open = false;
                continue;
            }
            if byte == START && self.buffer.is_empty() {
                continue;
            }
            self.buffer.push(byte);
            if self.buffer.len() > self.max + 1 {
                self.buffer.clear();
                self.open = false;
                return Err(FrameTooLarge(self.max));
            }
        }
        Ok(frames)
    }

    /// Whether a frame has started and not ended (the stream stopped mid-message).
    pub fn in_frame(&self) -> bool {
        self.open
    }
}
