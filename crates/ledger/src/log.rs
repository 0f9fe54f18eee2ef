//! The log kept in a store: appending inside a write's transaction, proofs and entries for
//! readers, signed checkpoints, witnesses' cosignatures, and the whole-store verification.
//!
//! State beside the tree lives in the store's key-value surface: the signing key ring
//! (`ledger/keys`), the latest checkpoint with its cosignatures (`ledger/checkpoint`) and the
//! witnesses' verifier keys (`ledger/witness/<name>`).

use std::sync::Arc;

use store::{
    HistoryPage, HistoryQuery, HistoryScope, LedgerLeaf, Store, StoreError, Transaction,
    VersionRecord,
};

use crate::hash::{Hash, leaf_hash, sha256_hex};
use crate::keys::LogKeys;
use crate::leaf::{always_logged, parse_leaf, stored_is_result_observation};
use crate::note::{ALG_COSIGNATURE, Checkpoint, Note, NoteError, NoteSignature, VerifierKey};
use crate::tree::{TileSource, Tree, TreeError, append as append_tiles};

/// The advisory lock appending writers hold from reading the log's size to their commit.
pub const LEDGER_LOCK: i64 = 0x4c45_4447_4552_0001; // "LEDGER", 1
/// The lock publishing a checkpoint takes, so that a smaller one never replaces a larger.
const CHECKPOINT_LOCK: i64 = 0x4c45_4447_4552_0002;

const KEYS: &str = "ledger/keys";
const CHECKPOINT: &str = "ledger/checkpoint";
const WITNESS_PREFIX: &str = "ledger/witness/";

/// The most entries one request returns.
pub const MAX_ENTRIES: u64 = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A request outside the tree (an index, a size): the client's mistake.
    #[error("{0}")]
    OutOfRange(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored tree or key ring is damaged.
    #[error("{0}")]
    Damaged(String),
}

impl fhir_model::Outcome for LogError {
    fn http_status(&self) -> u16 {
        match self {
            LogError::OutOfRange(_) => 400,
            LogError::Store(StoreError::Unavailable(_)) => 503,
            LogError::Store(StoreError::Conflict(_)) => 409,
            LogError::Store(_) | LogError::Damaged(_) => 500,
        }
    }

    fn issues(&self, request_id: &str) -> Vec<fhir_model::Issue> {
        use fhir_model::{Issue, IssueCode};
        match self {
            LogError::OutOfRange(message) => vec![Issue::error(IssueCode::Value, message.clone())],
            LogError::Store(StoreError::Unavailable(_)) => vec![Issue::error(
                IssueCode::Transient,
                "the database is unavailable; try again",
            )],
            _ => vec![fhir_model::internal_issue(request_id)],
        }
    }
}

impl From<NoteError> for LogError {
    fn from(error: NoteError) -> Self {
        LogError::Damaged(error.0)
    }
}

fn tree_error<E: Into<LogError>>(error: TreeError<E>) -> LogError {
    match error {
        TreeError::Source(e) => e.into(),
        TreeError::OutOfRange(message) => LogError::OutOfRange(message),
        TreeError::Damaged {
            level,
            index,
            held,
            needed,
        } => LogError::Damaged(format!(
            "tile {level}/{index} holds {held} hashes; the tree needs {needed}"
        )),
    }
}

struct StoreTiles<'a>(&'a dyn Store);

impl TileSource for StoreTiles<'_> {
    type Error = StoreError;

    fn tile(&mut self, level: u32, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.ledger_tile(level, index)
    }

    fn tiles(&mut self, keys: &[(u32, u64)]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.0.ledger_tiles(keys)
    }
}

struct TransactionTiles<'a, 't>(&'a mut (dyn Transaction + 't));

impl TileSource for TransactionTiles<'_, '_> {
    type Error = StoreError;

    fn tile(&mut self, level: u32, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.ledger_tile(level, index)
    }
}

/// A version to log, before it has a place in the log.
#[derive(Debug, Clone)]
pub struct PendingLeaf {
    /// The store's row key of the resource.
    pub row: i64,
    pub resource_type: String,
    pub id: String,
    pub version: i64,
    pub input: Vec<u8>,
}

/// Appends `pending` to the log inside the write's transaction: the log's lock, its size, the
/// leaves and the tiles they grow. Called last before the commit, so the lock is held briefly.
pub fn append(tx: &mut dyn Transaction, pending: Vec<PendingLeaf>) -> Result<(), StoreError> {
    if pending.is_empty() {
        return Ok(());
    }
    tx.lock_key(LEDGER_LOCK)?;
    let size = tx.ledger_size()?;
    let hashes: Vec<Hash> = pending.iter().map(|p| leaf_hash(&p.input)).collect();
    let tiles = append_tiles(&mut TransactionTiles(tx), size, &hashes).map_err(|e| match e {
        TreeError::Source(e) => e,
        other => StoreError::Internal(format!("the ledger's tiles: {other}")),
    })?;
    let leaves: Vec<LedgerLeaf> = pending
        .into_iter()
        .enumerate()
        .map(|(i, p)| LedgerLeaf {
            index: size + i as u64,
            row: p.row,
            resource_type: p.resource_type,
            id: p.id,
            version: p.version,
            input: p.input,
        })
        .collect();
    let tiles: Vec<(u32, u64, &[u8])> = tiles
        .iter()
        .map(|t| (t.level, t.index, t.hashes.as_slice()))
        .collect();
    tx.put_ledger(&leaves, &tiles)
}

/// The log as readers and the checkpoint publisher see it.
pub struct Log {
    store: Arc<dyn Store>,
    keys: LogKeys,
}

impl Log {
    /// The log of `store`, with its key ring (made, for `origin`, the first time: of two
    /// servers starting together, one ring wins and both use it). A store whose ring names
    /// another origin keeps it: verifiers know the log by it.
    pub fn open(store: Arc<dyn Store>, origin: &str, now: i64) -> Result<Log, LogError> {
        let keys = match store.checkpoint(KEYS)? {
            Some(stored) => stored,
            None => {
                let made = LogKeys::generate(origin, now)?.to_json().to_string();
                let mut tx = store.begin()?;
                tx.insert_checkpoint_if_absent(KEYS, &made)?;
                tx.commit()?;
                store
                    .checkpoint(KEYS)?
                    .ok_or_else(|| LogError::Damaged("the ledger's key ring vanished".into()))?
            }
        };
        let value: serde_json::Value = serde_json::from_str(&keys)
            .map_err(|e| LogError::Damaged(format!("the ledger's key ring: {e}")))?;
        Ok(Log {
            store,
            keys: LogKeys::from_json(&value)?,
        })
    }

    pub fn origin(&self) -> &str {
        self.keys.origin()
    }

    /// Adds a new signing key to the store's ring (the old ones stay, listed, to verify what
    /// they signed). A server signs with the key it opened the log with until it restarts.
    pub fn rotate_key(store: &dyn Store, now: i64) -> Result<VerifierKey, LogError> {
        let mut tx = store.begin()?;
        tx.lock_key(CHECKPOINT_LOCK)?;
        let ring = tx
            .take_checkpoint(KEYS)?
            .ok_or_else(|| LogError::Damaged("the store has no ledger key to rotate".into()))?;
        let value: serde_json::Value = serde_json::from_str(&ring)
            .map_err(|e| LogError::Damaged(format!("the ledger's key ring: {e}")))?;
        let mut keys = LogKeys::from_json(&value)?;
        keys.rotate(now)?;
        tx.set_checkpoint(KEYS, Some(&keys.to_json().to_string()))?;
        tx.commit()?;
        Ok(keys.signer().verifier())
    }

    /// The log's verifier keys, oldest first.
    pub fn verifiers(&self) -> Vec<VerifierKey> {
        self.keys.verifiers()
    }

    pub fn size(&self) -> Result<u64, LogError> {
        Ok(self.store.ledger_size()?)
    }

    fn tree_of(&self, size: u64) -> Result<u64, LogError> {
        let current = self.size()?;
        if size > current {
            return Err(LogError::OutOfRange(format!(
                "the tree has {current} leaves, not {size}"
            )));
        }
        Ok(size)
    }

    pub fn root(&self, size: u64) -> Result<Hash, LogError> {
        let size = self.tree_of(size)?;
        Tree::new(&mut StoreTiles(&*self.store), size)
            .root()
            .map_err(tree_error)
    }

    /// The inclusion proof of leaf `index` in the tree of `size` leaves.
    pub fn inclusion(&self, index: u64, size: u64) -> Result<Vec<Hash>, LogError> {
        let size = self.tree_of(size)?;
        Tree::new(&mut StoreTiles(&*self.store), size)
            .inclusion_proof(index)
            .map_err(tree_error)
    }

    /// The consistency proof from the tree of `first` leaves to the one of `second`.
    pub fn consistency(&self, first: u64, second: u64) -> Result<Vec<Hash>, LogError> {
        if first > second {
            return Err(LogError::OutOfRange(format!(
                "first ({first}) is larger than second ({second})"
            )));
        }
        let second = self.tree_of(second)?;
        Tree::new(&mut StoreTiles(&*self.store), second)
            .consistency_proof(first)
            .map_err(tree_error)
    }

    /// Leaves `start..end` (at most [`MAX_ENTRIES`], and none past the tree).
    pub fn entries(&self, start: u64, end: u64) -> Result<Vec<LedgerLeaf>, LogError> {
        if start > end {
            return Err(LogError::OutOfRange(format!(
                "start ({start}) is after end ({end})"
            )));
        }
        let size = self.size()?;
        if start > size {
            return Err(LogError::OutOfRange(format!(
                "the tree has {size} leaves; there is no leaf {start}"
            )));
        }
        let end = end.min(size).min(start.saturating_add(MAX_ENTRIES));
        Ok(self.store.ledger_leaves(start, end)?)
    }

    pub fn leaf_of(
        &self,
        resource_type: &str,
        id: &str,
        version: i64,
    ) -> Result<Option<LedgerLeaf>, LogError> {
        Ok(self.store.ledger_leaf_of(resource_type, id, version)?)
    }

    /// The latest published checkpoint, with its cosignatures.
    pub fn latest(&self) -> Result<Option<String>, LogError> {
        Ok(self.store.checkpoint(CHECKPOINT)?)
    }

    /// Signs a checkpoint of the tree as it is now and publishes it, unless the published one
    /// already has this size. Answers the published note and whether it is new.
    pub fn publish(&self) -> Result<(String, bool), LogError> {
        let size = self.size()?;
        if let Some(latest) = self.latest()?
            && note_size(&latest).is_some_and(|s| s >= size)
        {
            return Ok((latest, false));
        }
        let root = self.root(size)?;
        let text = Checkpoint {
            origin: self.origin().to_owned(),
            size,
            root,
        }
        .text();
        let note = Note {
            signatures: vec![self.keys.signer().sign(&text, 0)],
            text,
        }
        .to_string();
        let mut tx = self.store.begin()?;
        tx.lock_key(CHECKPOINT_LOCK)?;
        let stored = tx.take_checkpoint(CHECKPOINT)?;
        let stored_size = stored.as_deref().and_then(note_size);
        let (kept, new) = match stored {
            Some(stored) if stored_size.is_some_and(|s| s >= size) => (stored, false),
            _ => (note, true),
        };
        tx.set_checkpoint(CHECKPOINT, Some(&kept))?;
        tx.commit()?;
        Ok((kept, new))
    }

    /// Adds a witness's cosignature lines to the published checkpoint if it is still the one
    /// they sign and they verify by `witness`. Answers whether one was added.
    pub fn add_cosignatures(&self, witness: &VerifierKey, lines: &str) -> Result<bool, LogError> {
        let mut tx = self.store.begin()?;
        tx.lock_key(CHECKPOINT_LOCK)?;
        let Some(stored) = tx.take_checkpoint(CHECKPOINT)? else {
            return Ok(false);
        };
        let mut note = Note::parse(&stored)?;
        let mut added = false;
        for line in lines.lines().filter(|l| !l.is_empty()) {
            let Ok(signature) = NoteSignature::parse_line(line) else {
                continue;
            };
            if signature.verifies(witness, &note.text) {
                note.add(signature);
                added = true;
            }
        }
        tx.set_checkpoint(CHECKPOINT, Some(&note.to_string()))?;
        tx.commit()?;
        Ok(added)
    }

    /// Records a witness's verifier key, so that verifiers find it in the store.
    pub fn register_witness(&self, key: &VerifierKey) -> Result<(), LogError> {
        let mut tx = self.store.begin()?;
        tx.set_checkpoint(
            &format!("{WITNESS_PREFIX}{}", key.name),
            Some(&key.to_string()),
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn witnesses(&self) -> Result<Vec<VerifierKey>, LogError> {
        witnesses(&*self.store)
    }
}

fn note_size(note: &str) -> Option<u64> {
    Checkpoint::of_note(note).map(|c| c.size)
}

fn witnesses(store: &dyn Store) -> Result<Vec<VerifierKey>, LogError> {
    store
        .checkpoints_with_prefix(WITNESS_PREFIX)?
        .into_iter()
        .map(|(_, key)| VerifierKey::parse(&key).map_err(LogError::from))
        .filter(|k| !matches!(k, Ok(k) if k.algorithm != ALG_COSIGNATURE))
        .collect()
}

/// How verification reads the versions the log records: through the one read path, as its
/// caller (the operator) may see them.
pub trait Versions {
    fn version(
        &self,
        resource_type: &str,
        id: &str,
        version: i64,
    ) -> Result<Option<VersionRecord>, StoreError>;

    /// A page of a type's versions.
    fn history(&self, query: &HistoryQuery) -> Result<HistoryPage, StoreError>;
}

/// What `verify` found.
#[derive(Debug, Default)]
pub struct Verification {
    pub leaves: u64,
    /// Stored versions of logged kinds checked for a leaf.
    pub versions: u64,
    pub checkpoint_size: Option<u64>,
    pub cosignatures: usize,
    /// Each problem, naming the resource version or leaf.
    pub problems: Vec<String>,
}

/// How many leaves verification reads at a time.
const VERIFY_PAGE: u64 = 5_000;

/// Checks the whole log against the store: every leaf recomputed from the version it records
/// (its content's hash, custodian and time) and found in the tree; the tree recomputed from the
/// leaves; every stored version of a logged kind present in the log; the latest checkpoint's
/// signature by the log's keys and each cosignature by a registered witness. Never stops at the
/// first problem: each is named.
pub fn verify(
    store: &dyn Store,
    versions: &dyn Versions,
    mut progress: impl FnMut(u64, u64),
) -> Result<Verification, LogError> {
    let mut report = Verification::default();
    let size = store.ledger_size()?;
    report.leaves = size;
    let checkpoint = store.checkpoint(CHECKPOINT)?;
    let parsed = checkpoint
        .as_deref()
        .map(|c| Note::parse(c).and_then(|n| Checkpoint::parse(&n.text).map(|c| (n, c))));
    let checkpoint_size = match &parsed {
        Some(Ok((_, c))) => Some(c.size),
        _ => None,
    };

    // The leaves against their versions, and the tree rebuilt from them.
    let mut rebuilt = crate::tree::RootBuilder::default();
    let mut rebuilt_at_checkpoint = (checkpoint_size == Some(0)).then(crate::empty_root);
    let mut stored_tiles = StoreTiles(store);
    let mut stored = Tree::new(&mut stored_tiles, size);
    let mut next = 0u64;
    while next < size {
        let end = (next + VERIFY_PAGE).min(size);
        let leaves = store.ledger_leaves(next, end)?;
        let mut expected = next;
        for leaf in leaves {
            if leaf.index != expected {
                report
                    .problems
                    .push(format!("leaves {expected}..{} are missing", leaf.index));
            }
            expected = leaf.index + 1;
            check_leaf(versions, &leaf, &mut report.problems)?;
            let hash = leaf_hash(&leaf.input);
            match stored.leaf(leaf.index) {
                Ok(in_tree) if in_tree == hash => {}
                Ok(_) => report.problems.push(format!(
                    "leaf {} ({}/{}/_history/{}): the tree holds another hash for it",
                    leaf.index, leaf.resource_type, leaf.id, leaf.version
                )),
                Err(e) => report.problems.push(format!(
                    "leaf {}: the tree cannot be read: {}",
                    leaf.index,
                    tree_error(e)
                )),
            }
            rebuilt.push(hash);
            if Some(rebuilt.size()) == checkpoint_size {
                rebuilt_at_checkpoint = Some(rebuilt.root());
            }
        }
        if expected < end {
            report
                .problems
                .push(format!("leaves {expected}..{end} are missing"));
        }
        next = end;
        stored.forget();
        progress(next, size);
    }
    match stored.root() {
        Ok(root) if root == rebuilt.root() => {}
        Ok(_) => report
            .problems
            .push("the stored tree's root is not the root of the stored leaves".into()),
        Err(e) => report
            .problems
            .push(format!("the stored tree cannot be read: {}", tree_error(e))),
    }

    // Every version of a logged kind has its leaf.
    for resource_type in [
        "DiagnosticReport",
        "ImagingStudy",
        "DocumentReference",
        "Consent",
        "AuditEvent",
        "Observation",
    ] {
        let mut cursor = None;
        loop {
            let page = match versions.history(&HistoryQuery {
                scope: HistoryScope::Type(resource_type.into()),
                since: None,
                at: None,
                count: 1_000,
                cursor,
                visibility: search::query::Visibility::All,
            }) {
                Ok(page) => page,
                Err(e @ StoreError::Unavailable(_)) => return Err(e.into()),
                // A stored version that cannot be read (its bytes were changed: the leaf check
                // above names it) stops this type's scan, not the verification.
                Err(e) => {
                    report.problems.push(format!(
                        "the stored versions of {resource_type} cannot all be read ({e}): one was damaged"
                    ));
                    break;
                }
            };
            for version in &page.versions {
                let logged = store
                    .ledger_leaf_of(resource_type, &version.id, version.version)?
                    .is_some();
                // An Observation that is neither a result nor logged has nothing to check.
                let must_be_logged = always_logged(resource_type)
                    || version
                        .content
                        .as_deref()
                        .is_some_and(stored_is_result_observation);
                if !logged && !must_be_logged {
                    continue;
                }
                report.versions += 1;
                if !logged {
                    report.problems.push(format!(
                        "{resource_type}/{}/_history/{}: stored but not in the log",
                        version.id, version.version
                    ));
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }

    // The checkpoint and its cosignatures.
    match parsed {
        None if size > 0 => report
            .problems
            .push("no checkpoint has been published".into()),
        None => {}
        Some(Err(e)) => report
            .problems
            .push(format!("the published checkpoint is malformed: {e}")),
        Some(Ok((note, published))) => {
            report.checkpoint_size = Some(published.size);
            let keys: Vec<VerifierKey> = match store.checkpoint(KEYS)? {
                Some(ring) => serde_json::from_str(&ring)
                    .ok()
                    .and_then(|v| LogKeys::from_json(&v).ok())
                    .map(|k| k.verifiers())
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            if !keys
                .iter()
                .any(|k| k.name == published.origin && note.signed_by(k))
            {
                report
                    .problems
                    .push("the checkpoint's signature does not verify by the log's keys".into());
            }
            if published.size > size {
                report.problems.push(format!(
                    "the checkpoint has {} leaves; the store holds {size}",
                    published.size
                ));
            } else if rebuilt_at_checkpoint != Some(published.root) {
                report.problems.push(format!(
                    "the checkpoint's root is not the root of the first {} stored leaves: the log was rewritten",
                    published.size
                ));
            }
            let witnesses = witnesses(store)?;
            for signature in note
                .signatures
                .iter()
                .filter(|s| !keys.iter().any(|k| k.name == s.name && k.id == s.id))
            {
                match witnesses
                    .iter()
                    .find(|w| w.name == signature.name && w.id == signature.id)
                {
                    Some(witness) if signature.verifies(witness, &note.text) => {
                        report.cosignatures += 1
                    }
                    Some(_) => report.problems.push(format!(
                        "the cosignature of witness {} does not verify",
                        signature.name
                    )),
                    None => report.problems.push(format!(
                        "a signature by {}, a key the store does not know",
                        signature.name
                    )),
                }
            }
        }
    }
    Ok(report)
}

/// Checks one leaf against the version it records.
fn check_leaf(
    versions: &dyn Versions,
    leaf: &LedgerLeaf,
    problems: &mut Vec<String>,
) -> Result<(), LogError> {
    let name = format!(
        "{}/{}/_history/{}",
        leaf.resource_type, leaf.id, leaf.version
    );
    let Some(fields) = parse_leaf(&leaf.input) else {
        problems.push(format!(
            "leaf {} ({name}): its input is malformed",
            leaf.index
        ));
        return Ok(());
    };
    if fields.resource_type != leaf.resource_type
        || fields.id != leaf.id
        || fields.version != leaf.version
    {
        problems.push(format!(
            "leaf {} ({name}): its input names {}/{}/_history/{}",
            leaf.index, fields.resource_type, fields.id, fields.version
        ));
    }
    let version = match versions.version(&leaf.resource_type, &leaf.id, leaf.version) {
        Ok(Some(version)) => version,
        Ok(None) => {
            problems.push(format!(
                "{name}: in the log (leaf {}) but not stored",
                leaf.index
            ));
            return Ok(());
        }
        Err(e @ StoreError::Unavailable(_)) => return Err(e.into()),
        Err(e) => {
            problems.push(format!(
                "{name}: cannot be read ({e}): its stored bytes were changed"
            ));
            return Ok(());
        }
    };
    let sha256 = sha256_hex(version.content.as_deref().unwrap_or_default());
    if sha256 != fields.sha256 {
        problems.push(format!(
            "{name}: its content is not what was logged (leaf {}): changed behind the server's back",
            leaf.index
        ));
    }
    if version.custodian != fields.org {
        problems.push(format!(
            "{name}: its custodian {:?} is not the logged {:?} (leaf {})",
            version.custodian, fields.org, leaf.index
        ));
    }
    if fhir_model::clock::format_instant(version.last_updated) != fields.time {
        problems.push(format!(
            "{name}: its time is not the logged {} (leaf {})",
            fields.time, leaf.index
        ));
    }
    Ok(())
}
