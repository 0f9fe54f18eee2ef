//! The witness's side of C2SP `tlog-witness`: an `add-checkpoint` request is an old size line,
//! the consistency proof's hashes (a line each), an empty line and the signed checkpoint. The
//! witness cosigns only a checkpoint signed by a log key it trusts and consistent with the last
//! one it cosigned for that origin: a checkpoint that would fork the log gets no cosignature.

use crate::hash::{Hash, from_base64, to_base64};
use crate::note::{Checkpoint, Note, NoteSigner, VerifierKey};
use crate::tree::verify_consistency;

/// At most this many proof lines (a proof in a tree of 2^63 leaves is shorter).
pub const MAX_PROOF_LINES: usize = 63;

/// A request to cosign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    pub old: u64,
    pub proof: Vec<Hash>,
    /// The signed checkpoint, as a note.
    pub checkpoint: String,
}

/// Why the witness did not cosign, as its HTTP status says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
    /// For 409 on a size mismatch: the size of the last cosigned checkpoint.
    pub size: Option<u64>,
}

fn refuse(status: u16, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        message: message.into(),
        size: None,
    }
}

impl AddCheckpoint {
    pub fn body(&self) -> String {
        let mut out = format!("old {}\n", self.old);
        for hash in &self.proof {
            out.push_str(&to_base64(hash));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint);
        out
    }

    pub fn parse(body: &str) -> Result<AddCheckpoint, Refusal> {
        let (head, checkpoint) = body
            .split_once("\n\n")
            .ok_or_else(|| refuse(400, "the request has no empty line before the checkpoint"))?;
        let mut lines = head.split('\n');
        let old = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .filter(|n| *n == "0" || !n.starts_with('0'))
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| refuse(400, "the request starts with 'old SIZE'"))?;
        let mut proof = Vec::new();
        for line in lines {
            if proof.len() == MAX_PROOF_LINES {
                return Err(refuse(400, "more than 63 consistency proof lines"));
            }
            proof.push(
                from_base64(line)
                    .ok_or_else(|| refuse(400, "a consistency proof line is not a base64 hash"))?,
            );
        }
        Ok(AddCheckpoint {
            old,
            proof,
            checkpoint: checkpoint.to_owned(),
        })
    }
}

/// What the witness last cosigned for a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witnessed {
    pub size: u64,
    pub root: Hash,
}

/// Decides a request: the new state to persist (atomically with the check) and the
/// cosignature line to answer with.
pub fn cosign(
    witness: &NoteSigner,
    log_keys: &[VerifierKey],
    last: Option<&Witnessed>,
    request: &AddCheckpoint,
    now: u64,
) -> Result<(Witnessed, String), Refusal> {
    let note = Note::parse(&request.checkpoint).map_err(|e| refuse(400, e.0))?;
    let checkpoint = Checkpoint::parse(&note.text).map_err(|e| refuse(400, e.0))?;
    let trusted: Vec<&VerifierKey> = log_keys
        .iter()
        .filter(|k| k.name == checkpoint.origin)
        .collect();
    if trusted.is_empty() {
        return Err(refuse(404, format!("unknown log '{}'", checkpoint.origin)));
    }
    if !trusted.iter().any(|k| note.signed_by(k)) {
        return Err(refuse(
            403,
            "no signature by a trusted key of the log verifies",
        ));
    }
    if request.old > checkpoint.size {
        return Err(refuse(400, "the old size is larger than the checkpoint's"));
    }
    let last_size = last.map_or(0, |l| l.size);
    if request.old != last_size {
        return Err(Refusal {
            status: 409,
            message: format!("the last cosigned checkpoint has size {last_size}"),
            size: Some(last_size),
        });
    }
    match last {
        None => {
            if !request.proof.is_empty() {
                return Err(refuse(422, "the proof from size 0 must be empty"));
            }
        }
        Some(last) if last.size == checkpoint.size => {
            if last.root != checkpoint.root {
                return Err(refuse(
                    409,
                    "a different root for a size already cosigned: a fork",
                ));
            }
        }
        Some(last) => {
            if !verify_consistency(
                last.size,
                checkpoint.size,
                &last.root,
                &checkpoint.root,
                &request.proof,
            ) {
                return Err(refuse(
                    422,
                    "the consistency proof does not verify: the log forked",
                ));
            }
        }
    }
    let line = witness.sign(&note.text, now).line();
    Ok((
        Witnessed {
            size: checkpoint.size,
            root: checkpoint.root,
        },
        line,
    ))
}
