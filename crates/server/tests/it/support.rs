//! Sending requests to the router and reading responses.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use repository::Repository;
use serde_json::Value;
use server::{AppState, ServerConfig};
use test_support::TestStore;
use tower::ServiceExt;

pub struct App {
    pub router: Router,
    pub state: AppState,
    pub _store: TestStore,
    _exports: tempfile::TempDir,
}

impl App {
    /// `sqlite` or `postgres`: the store under this app.
    pub fn backend(&self) -> &'static str {
        self._store.backend()
    }
}

pub fn app_with(store: TestStore, mut config: ServerConfig) -> App {
    // Each app its own export directory: the server empties it when it starts.
    let exports = tempfile::tempdir().unwrap();
    config.export_dir = exports.path().join("exports");
    let repository = Arc::new(Repository::new(Arc::clone(&store.store)));
    let state = AppState::new(repository, config);
    App {
        router: server::router(state.clone()),
        state,
        _store: store,
        _exports: exports,
    }
}

/// An app with the master patient index and health codes enabled, as `meridian serve` runs.
pub fn identity_app(store: TestStore) -> App {
    let repository = Arc::new(Repository::new(Arc::clone(&store.store)));
    let mpi = residents::mpi::Mpi::new(residents::mpi::IdentityConfig::default());
    repository.add_write_hook(mpi.hook());
    // As `meridian serve` has it: the workflow's rules on every Task, the master index's
    // review Tasks among them.
    repository.add_write_hook(Arc::new(workflow::WorkflowHook::new(
        workflow::WorkflowConfig::default(),
    )));
    let ring = residents::health_code::KeyRing::generate(0).expect("keys");
    let codes = Arc::new(residents::health_code::HealthCodes::new(
        ring,
        Default::default(),
    ));
    let services = server::IdentityServices { mpi, codes };
    let exports = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        public_base: Some("http://meridian.test/fhir".into()),
        export_dir: exports.path().join("exports"),
        ..ServerConfig::default()
    };
    let state = AppState::with_identity(repository, config, services);
    App {
        router: server::router(state.clone()),
        state,
        _store: store,
        _exports: exports,
    }
}

pub fn app(store: TestStore) -> App {
    app_with(
        store,
        ServerConfig {
            public_base: Some("http://meridian.test/fhir".into()),
            ..ServerConfig::default()
        },
    )
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The first issue of an OperationOutcome body: (code, expression).
    pub fn issue(&self) -> (String, Option<String>) {
        let body = self.json();
        assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
        let issue = &body["issue"][0];
        (
            issue["code"].as_str().unwrap().to_owned(),
            issue["expression"][0].as_str().map(str::to_owned),
        )
    }
}

impl App {
    pub async fn send(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(body.into()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, uri: &str) -> Answer {
        self.send(Method::GET, uri, &[], Body::empty()).await
    }

    pub async fn post_json(&self, uri: &str, body: &Value) -> Answer {
        self.send(
            Method::POST,
            uri,
            &[("content-type", "application/fhir+json")],
            body.to_string(),
        )
        .await
    }

    pub async fn put_json(&self, uri: &str, body: &Value, headers: &[(&str, &str)]) -> Answer {
        let mut all = vec![("content-type", "application/fhir+json")];
        all.extend_from_slice(headers);
        self.send(Method::PUT, uri, &all, body.to_string()).await
    }
}

/// A runtime for one test on a store that must be made and dropped outside async code (the
/// PostgreSQL driver runs a runtime of its own when it connects and disconnects).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// One async test body against the app on every backend: `store_tests! { async fn name(app)
/// { ... } }` expands to `name::sqlite`, `name::postgres` and `name::citus`, each on a fresh
/// database (the last on the local Citus cluster, its tables distributed).
macro_rules! store_tests {
    ($(
        $(#[$meta:meta])*
        async fn $name:ident($app:ident) $body:block
    )*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                $(#[$meta])*
                async fn test_body($app: &$crate::support::App) $body

                #[test]
                fn sqlite() {
                    let app = $crate::support::app(test_support::sqlite());
                    $crate::support::runtime().block_on(test_body(&app));
                }

                #[test]
                fn postgres() {
                    let app = $crate::support::app(test_support::postgres());
                    $crate::support::runtime().block_on(test_body(&app));
                }

                #[test]
                fn citus() {
                    let app = $crate::support::app(test_support::citus());
                    $crate::support::runtime().block_on(test_body(&app));
                }
            }
        )*
    };
}
pub(crate) use store_tests;
