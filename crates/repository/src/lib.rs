//! The FHIR repository: what FHIR R4's RESTful interactions mean, over any [`Store`]. Create,
//! update, patch and delete with version checks and conditional forms; read, vread, history and
//! search; batch and transaction Bundles; validation. It knows nothing of HTTP: the server maps
//! requests onto these calls and [`RepositoryError`]s onto status codes.

mod append;
mod bundle;
mod changes;
mod custom;
mod error;
mod export;
mod hooks;
mod import;
mod ledgering;
pub mod meta;
pub mod operations;
mod paging;
mod policy;
mod read;
mod reader;
mod render;
mod searches;
mod stored;
mod transaction;
mod write;

use std::sync::{Arc, RwLock};

use caller::Caller;
use fhir_model::{Issue, IssueCode, Model};
use search::{Indexer, Registry};
use serde_json::{Map, Value};
use store::{HistoryScope, Store, VersionRecord};

pub use append::NewResource;
pub use bundle::{BundleOptions, parse_etag, parse_query};
pub use changes::{Change, ChangeFeed, Cursor};
pub use custom::{REINDEX_JOB, ReindexJob, ReindexProgress};
pub use error::RepositoryError;
pub use export::{
    EXPORT_JOB, ExportError, ExportFile, ExportJob, ExportLevel, ExportRequest, ExportResult,
    export_prefix,
};
pub use hooks::{InTransaction, WriteHook};
pub use import::{ImportCounts, ImportFailure, ImportOptions, ImportReport, ImportUnit};
pub use ledgering::{LEDGER_CONSUMER, Logged};
#[doc(hidden)]
pub use paging::{CursorSeal, Sealer};
pub use policy::{
    AccessPolicy, Forbidden, Interaction, ResourceFacts, SeeEverything, Stewardship, WriteFacts,
};
pub use read::HistoryRequest;
pub use reader::Reader;
pub use render::encode_query;
pub use searches::{SearchRequest, SearchScope};
pub use stored::parse_stored;
pub use transaction::WriteTx;

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteStatus {
    /// A new resource (201).
    Created,
    /// A new version of an existing resource (200).
    Updated,
    /// An update that changed nothing: no new version was written (200).
    Unchanged,
    /// A conditional create found the resource already there (200).
    Existing,
    /// The resource is now deleted (204).
    Deleted,
    /// There was nothing to delete (204).
    NothingToDelete,
}

/// The result of a write: the version now current, and what happened.
#[derive(Debug, Clone)]
pub struct Written {
    pub status: WriteStatus,
    /// The current version after the write (`None` when nothing was there to delete).
    pub record: Option<VersionRecord>,
}

/// The FHIR repository over one store.
pub struct Repository {
    store: Arc<dyn Store>,
    model: &'static Model,
    /// Replaced whole when SearchParameter resources change; writes take the current one.
    indexer: RwLock<Arc<Indexer>>,
    /// Services that act inside every write's transaction (see `hooks`).
    hooks: RwLock<Vec<Arc<dyn WriteHook>>>,
    /// Seals the paging cursors of next links; its key is read from the store on first use.
    cursors: std::sync::OnceLock<CursorSeal>,
    /// What each caller may read; applied by the [`Reader`] inside every query.
    policy: RwLock<Arc<dyn AccessPolicy>>,
}

/// How many times a write that raced another is run again before giving up.
const MAX_ATTEMPTS: usize = 10;

impl Repository {
    pub fn new(store: Arc<dyn Store>) -> Repository {
        let model = fhir_model::r4();
        let registry = Arc::new(Registry::r4(model));
        Repository {
            store,
            model,
            indexer: RwLock::new(Arc::new(Indexer::new(registry))),
            hooks: RwLock::new(Vec::new()),
            cursors: std::sync::OnceLock::new(),
            policy: RwLock::new(Arc::new(SeeEverything)),
        }
    }

    /// Replaces the access policy: every read and write from now on applies `policy`.
    pub fn set_access_policy(&self, policy: Arc<dyn AccessPolicy>) {
        *self
            .policy
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = policy;
    }

    pub(crate) fn access_policy(&self) -> Arc<dyn AccessPolicy> {
        self.policy
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The seal of next links' cursors, its key read from (or first made in) the store.
    pub(crate) fn cursors(&self) -> Result<&CursorSeal, RepositoryError> {
        if let Some(seal) = self.cursors.get() {
            return Ok(seal);
        }
        let seal = CursorSeal::of_store(&*self.store)?;
        Ok(self.cursors.get_or_init(|| seal))
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn model(&self) -> &'static Model {
        self.model
    }

    /// The search parameters in force and their compiled expressions.
    pub fn indexer(&self) -> Arc<Indexer> {
        self.indexer
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Whether `resource_type` is a resource type this server serves.
    pub fn knows_type(&self, resource_type: &str) -> bool {
        self.model.is_resource_type(resource_type)
    }

    /// Fails with 404 for a type the server does not serve.
    pub fn check_type(&self, resource_type: &str) -> Result<(), RepositoryError> {
        if self.knows_type(resource_type) {
            Ok(())
        } else {
            Err(RepositoryError::NotFound(format!(
                "'{resource_type}' is not a FHIR R4 resource type"
            )))
        }
    }

    /// Runs `work` in a store transaction for `ctx`, all or nothing, with the write hooks run
    /// before the commit; again from the start when it raced another writer. After a commit
    /// that wrote a SearchParameter, the indexer is rebuilt.
    fn with_transaction<T>(
        &self,
        ctx: &Caller,
        mut work: impl FnMut(&mut WriteTx<'_>) -> Result<T, RepositoryError>,
    ) -> Result<T, RepositoryError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result: Result<(T, bool), RepositoryError> = (|| {
                let mut tx = WriteTx::new(self.store.begin()?, ctx);
                let value = work(&mut tx)?;
                self.run_hooks(&mut tx)?;
                let wrote_search_parameters = tx.wrote_search_parameters;
                tx.commit()?;
                Ok((value, wrote_search_parameters))
            })();
            match result {
                Ok((value, wrote_search_parameters)) => {
                    if wrote_search_parameters {
                        self.load_search_parameters(ctx)?;
                    }
                    return Ok(value);
                }
                Err(error) if error.is_retryable() && attempt < MAX_ATTEMPTS => {
                    tracing::debug!(attempt, %error, "write raced another; running it again");
                    std::thread::sleep(std::time::Duration::from_millis(attempt as u64 * 2));
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Fails with 404 for a type the server does not serve, and with 400 for an id that no
    /// resource can have: a NUL or other stray byte from a URL must not reach a store
    /// (PostgreSQL refused it with an error that became a 500).
    pub fn check_resource(&self, resource_type: &str, id: &str) -> Result<(), RepositoryError> {
        self.check_type(resource_type)?;
        check_id(id)
    }

    /// `GET [type]/[id]`: the current version; 404 if it never existed, 410 if deleted.
    pub fn read(
        &self,
        ctx: &Caller,
        resource_type: &str,
        id: &str,
    ) -> Result<VersionRecord, RepositoryError> {
        self.permit(ctx, Interaction::Read, resource_type)?;
        self.reader(ctx).read(resource_type, id)
    }

    /// `GET [type]/[id]/_history/[vid]`.
    pub fn vread(
        &self,
        ctx: &Caller,
        resource_type: &str,
        id: &str,
        version: &str,
    ) -> Result<VersionRecord, RepositoryError> {
        self.permit(ctx, Interaction::Read, resource_type)?;
        self.reader(ctx).vread(resource_type, id, version)
    }

    /// `_history` at instance, type or system level: a `history` Bundle, newest first.
    pub fn history(
        &self,
        ctx: &Caller,
        base: &str,
        request: &HistoryRequest,
    ) -> Result<Vec<u8>, RepositoryError> {
        let resource_type = match &request.scope {
            HistoryScope::System => "*",
            HistoryScope::Type(t) | HistoryScope::Instance(t, _) => t.as_str(),
        };
        self.permit(ctx, Interaction::Read, resource_type)?;
        self.reader(ctx).history(base, request)
    }

    /// A search: one page as a `searchset` Bundle.
    pub fn search(
        &self,
        ctx: &Caller,
        base: &str,
        request: &SearchRequest,
    ) -> Result<Vec<u8>, RepositoryError> {
        self.reader(ctx).search(base, request)
    }

    /// `Patient/[id]/$everything`.
    pub fn everything(
        &self,
        ctx: &Caller,
        base: &str,
        id: &str,
        params: &[(String, String)],
    ) -> Result<Vec<u8>, RepositoryError> {
        self.permit(ctx, Interaction::Read, "Patient")?;
        self.reader(ctx).everything(base, id, params)
    }

    /// Structural validation of a resource, as every write does it. Errors and warnings.
    pub fn validate(&self, resource: &Value) -> Vec<Issue> {
        fhir_model::validate(self.model, resource)
    }
}

/// Fails with 400 for an id that is not a FHIR logical id (1 to 64 of `A-Z a-z 0-9 - .`).
pub(crate) fn check_id(id: &str) -> Result<(), RepositoryError> {
    if meta::is_valid_id(id) {
        Ok(())
    } else {
        let shown: String = id.chars().take(64).flat_map(char::escape_debug).collect();
        Err(RepositoryError::invalid(
            IssueCode::Invalid,
            format!("'{shown}' is not a valid id (1 to 64 of A-Z, a-z, 0-9, '-' and '.')"),
        ))
    }
}

/// Checks that `resource` is a JSON object of a known resource type and answers the type.
fn resource_type_of(model: &Model, resource: &Value) -> Result<String, RepositoryError> {
    let Some(object) = resource.as_object() else {
        return Err(RepositoryError::invalid(
            IssueCode::Structure,
            "a resource must be a JSON object",
        ));
    };
    match object.get("resourceType") {
        Some(Value::String(t)) if model.is_resource_type(t) => Ok(t.clone()),
        Some(Value::String(t)) => Err(RepositoryError::invalid_at(
            IssueCode::NotSupported,
            format!("'{t}' is not a FHIR R4 resource type"),
            "resourceType",
        )),
        _ => Err(RepositoryError::invalid(
            IssueCode::Required,
            "the resource has no resourceType",
        )),
    }
}

fn into_object(resource: Value) -> Map<String, Value> {
    match resource {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}
