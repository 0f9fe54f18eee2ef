//! Sign-in over real HTTP against the real server on both stores: the authorization code flow
//! with PKCE driven through the login, organisation and approval pages, client credentials
//! with RS384 and ES384 assertions, refresh rotation, introspection and revocation, forged
//! tokens of every kind, and hostile input that must never be a 500.

use std::net::SocketAddr;
use std::sync::Arc;

use access::signin::{AccountKind, PasswordCost, RoleLink};
use access::{AuthConfig, Authenticator};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use repository::Repository;
use serde_json::{Value, json};
use server::{AppState, Auth, ServerConfig};
use test_support::TestStore;
use test_support::signin::{assertion, ec_key, form_urlencoded, percent_encode, pkce, rsa_key};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Server {
    address: SocketAddr,
    auth: Arc<Authenticator>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// The store (the test keeps its `TestStore`, which must be dropped outside the runtime).
    store: Arc<dyn store::Store>,
    _exports: tempfile::TempDir,
}

impl Server {
    async fn start(store: &TestStore) -> Server {
        let mut config = AuthConfig::new("http://meridian.test/fhir");
        config.password = PasswordCost::TESTS;
        let auth =
            Arc::new(sync(|| Authenticator::open(Arc::clone(&store.store), config)).unwrap());
        let exports = tempfile::tempdir().unwrap();
        let repository = Arc::new(Repository::new(Arc::clone(&store.store)));
        let state = AppState::new(
            repository,
            ServerConfig {
                export_dir: exports.path().join("exports"),
                auth: Auth::Required(Arc::clone(&auth)),
                ..ServerConfig::default()
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(server::serve(listener, state, async move {
            let _ = stopped.await;
        }));
        sync(|| accounts(&auth));
        Server {
            address,
            auth,
            stop: Some(stop),
            served: Some(served),
            store: Arc::clone(&store.store),
            _exports: exports,
        }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            let _ = served.await;
        }
    }

    /// An access token for an account.
    fn token(&self, name: &str, seconds: i64) -> String {
        sync(|| self.auth.issue_for_account(name, None, seconds)).unwrap()
    }

    fn base(&self) -> String {
        format!("http://{}", self.address)
    }

    /// One request on its own connection.
    async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let mut stream = tokio::net::TcpStream::connect(self.address).await.unwrap();
        let mut text = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.address,
            body.len()
        );
        for (name, value) in headers {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        text.push_str("\r\n");
        let mut bytes = text.into_bytes();
        bytes.extend_from_slice(body);
        stream.write_all(&bytes).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers = head
            .lines()
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Reply {
            status,
            headers,
            body: body.to_owned(),
        }
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send("GET", path, headers, b"").await
    }

    async fn form(&self, path: &str, fields: &[(&str, &str)], headers: &[(&str, &str)]) -> Reply {
        let mut all = vec![("content-type", "application/x-www-form-urlencoded")];
        all.extend_from_slice(headers);
        self.send("POST", path, &all, form_urlencoded(fields).as_bytes())
            .await
    }

    async fn fhir(&self, path: &str, token: &str) -> Reply {
        self.get(path, &[("authorization", &format!("Bearer {token}"))])
            .await
    }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The value of a hidden field of the page's form.
    fn field(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} in {}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_owned()
    }
}

fn accounts(auth: &Authenticator) {
    auth.add_account("admin", AccountKind::Administrator, Some("admin-secret"))
        .unwrap();
    let role = |id: &str, organization: &str| RoleLink {
        role: format!("PractitionerRole/{id}"),
        organization: Some(format!("Organization/{organization}")),
        practitioner: Some("Practitioner/li".into()),
    };
    auth.add_account(
        "dr-li",
        AccountKind::Practitioner {
            roles: vec![role("li-a", "hospital-a"), role("li-b", "hospital-b")],
        },
        Some("li-secret"),
    )
    .unwrap();
    auth.add_account(
        "zhao",
        AccountKind::Resident {
            patient: "Patient/zhao".into(),
        },
        Some("zhao-secret"),
    )
    .unwrap();
}

const REDIRECT: &str = "https://app.example.org/callback";

/// A location's query parameter.
fn param(location: &str, name: &str) -> Option<String> {
    let query = location.split_once('?')?.1;
    repository::parse_query(query)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

/// Registers a public app through RFC 7591 with the administrator's token.
async fn register_app(server: &Server) -> String {
    let admin = server.token("admin", 600);
    let metadata = json!({
        "client_name": "<b>Health</b> app",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid fhirUser launch/patient patient/*.rs user/*.rs offline_access",
    })
    .to_string();
    let reply = server
        .send(
            "POST",
            "/auth/register",
            &[
                ("authorization", &format!("Bearer {admin}")),
                ("content-type", "application/json"),
            ],
            metadata.as_bytes(),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.json()["client_id"].as_str().unwrap().to_owned()
}

/// Synchronous store work from a test's async body (the PostgreSQL driver blocks on a runtime
/// of its own, which a thread driving async tasks may not do).
fn sync<T>(work: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(work)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

macro_rules! sign_in_tests {
    ($(async fn $name:ident($server:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn test_body($server: &Server) $body

                #[test]
                fn sqlite() {
                    let store = test_support::sqlite();
                    runtime().block_on(async {
                        let server = Server::start(&store).await;
                        test_body(&server).await;
                        server.stop().await;
                    });
                }

                #[test]
                fn postgres() {
                    let store = test_support::postgres();
                    runtime().block_on(async {
                        let server = Server::start(&store).await;
                        test_body(&server).await;
                        server.stop().await;
                    });
                }
            }
        )*
    };
}

sign_in_tests! {
    async fn a_practitioner_signs_in_through_the_pages_and_the_app_reads_with_its_token(server) {
        let client = register_app(server).await;
        let (verifier, challenge) = pkce();
        let aud = format!("{}/fhir", server.base());
        let authorize = format!("/auth/authorize?{}", form_urlencoded(&[
            ("response_type", "code"), ("client_id", &client), ("redirect_uri", REDIRECT),
            ("scope", "openid fhirUser launch/patient user/*.rs offline_access"), ("state", "s-1"),
            ("aud", &aud), ("code_challenge", &challenge), ("code_challenge_method", "S256"),
        ]));
        // The login page, in the browser's language, its values escaped.
        let page = server.get(&authorize, &[("accept-language", "en-US,en;q=0.9")]).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.header("content-type").unwrap().starts_with("text/html"));
        assert!(page.body.contains("Sign in to Meridian") && page.body.contains("name=\"viewport\""));
        assert!(page.body.contains("&lt;b&gt;Health&lt;/b&gt; app") && !page.body.contains("<b>Health"));
        assert_eq!(page.header("x-frame-options"), Some("DENY"));
        // The switch to Chinese, kept in a cookie.
        let chinese = server.get(&format!("{authorize}&lang=zh"), &[("accept-language", "en")]).await;
        assert!(chinese.body.contains("登录 Meridian"), "{}", chinese.body);
        assert!(chinese.header("set-cookie").unwrap().starts_with("meridian_lang=zh"));
        let kept = server.get(&authorize, &[("accept-language", "en"), ("cookie", "meridian_lang=zh")]).await;
        assert!(kept.body.contains("登录 Meridian"));

        let request = page.field("request");
        let wrong = server.form("/auth/authorize", &[("step", "login"), ("request", &request), ("username", "dr-li"), ("password", "nope"), ("lang", "en")], &[]).await;
        assert_eq!(wrong.status, 401);
        assert!(wrong.body.contains("not right"));
        // A forged sealed request gets nowhere.
        let forged = server.form("/auth/authorize", &[("step", "login"), ("request", "AAAA"), ("username", "dr-li"), ("password", "li-secret")], &[]).await;
        assert_eq!(forged.status, 400);

        let organizations = server.form("/auth/authorize", &[("step", "login"), ("request", &request), ("username", "dr-li"), ("password", "li-secret"), ("lang", "en")], &[]).await;
        assert_eq!(organizations.status, 200, "{}", organizations.body);
        assert!(organizations.body.contains("Organization/hospital-b"));
        let signed = organizations.field("signed");
        let approval = server.form("/auth/authorize", &[("step", "organization"), ("signed", &signed), ("organization", "Organization/hospital-b"), ("lang", "en")], &[]).await;
        assert_eq!(approval.status, 200, "{}", approval.body);
        assert!(approval.body.contains("user/*.rs") && approval.body.contains("name=\"patient\""));
        let signed = approval.field("signed");
        let redirect = server.form("/auth/authorize", &[("step", "approve"), ("signed", &signed), ("decision", "allow"), ("patient", "zhao")], &[]).await;
        assert_eq!(redirect.status, 303, "{}", redirect.body);
        let location = redirect.header("location").unwrap().to_owned();
        assert!(location.starts_with(REDIRECT));
        assert_eq!(param(&location, "state").as_deref(), Some("s-1"));
        let code = param(&location, "code").unwrap();

        // The code, with a wrong verifier, then at a wrong redirect URI: refused (and used up).
        let exchange = |code: String, verifier: String, redirect: &'static str| {
            let client = client.clone();
            async move {
                server.form("/auth/token", &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", redirect), ("code_verifier", &verifier), ("client_id", &client)], &[]).await
            }
        };
        let mismatch = exchange(code.clone(), URL_SAFE_NO_PAD.encode([8u8; 40]), REDIRECT).await;
        assert_eq!((mismatch.status, mismatch.json()["error"].clone()), (400, json!("invalid_grant")));
        assert_eq!(mismatch.header("cache-control"), Some("no-store"));

        // Again, properly this time.
        let redirect = server.form("/auth/authorize", &[("step", "approve"), ("signed", &signed), ("decision", "allow"), ("patient", "Patient/zhao")], &[]).await;
        let code = param(redirect.header("location").unwrap(), "code").unwrap();
        let elsewhere = exchange(code, verifier.clone(), "https://app.example.org/other").await;
        assert_eq!(elsewhere.json()["error"], "invalid_grant");
        let redirect = server.form("/auth/authorize", &[("step", "approve"), ("signed", &signed), ("decision", "allow"), ("patient", "Patient/zhao")], &[]).await;
        let code = param(redirect.header("location").unwrap(), "code").unwrap();
        let tokens = exchange(code.clone(), verifier.clone(), REDIRECT).await;
        assert_eq!(tokens.status, 200, "{}", tokens.body);
        let tokens = tokens.json();
        assert_eq!(tokens["patient"], "zhao");
        assert_eq!(tokens["organization"], "Organization/hospital-b");
        assert!(tokens["id_token"].is_string());
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        let read = server.fhir("/fhir/Patient?_count=1", &access).await;
        assert_eq!(read.status, 200, "{}", read.body);

        // Introspection (with a token) and refresh rotation; a reused refresh token kills all.
        let introspected = server.form("/auth/introspect", &[("token", &access)], &[("authorization", &format!("Bearer {access}"))]).await;
        assert_eq!(introspected.json()["active"], true);
        assert_eq!(introspected.json()["fhirUser"], "Practitioner/li");
        assert_eq!(server.form("/auth/introspect", &[("token", &access)], &[]).await.status, 401);
        let refresh = |token: String| {
            let client = client.clone();
            async move { server.form("/auth/token", &[("grant_type", "refresh_token"), ("refresh_token", &token), ("client_id", &client)], &[]).await }
        };
        let first = tokens["refresh_token"].as_str().unwrap().to_owned();
        let rotated = refresh(first.clone()).await.json();
        let newer = rotated["access_token"].as_str().unwrap().to_owned();
        assert_eq!(server.fhir("/fhir/Patient", &newer).await.status, 200);
        assert_eq!(refresh(first).await.json()["error"], "invalid_grant");
        assert_eq!(server.fhir("/fhir/Patient", &newer).await.status, 401);
        assert_eq!(server.fhir("/fhir/Patient", &access).await.status, 401);
        // The code, once more: refused.
        assert_eq!(exchange(code, verifier, REDIRECT).await.json()["error"], "invalid_grant");

        // Denying goes back to the app with access_denied.
        let denied = server.form("/auth/authorize", &[("step", "approve"), ("signed", &signed), ("decision", "deny")], &[]).await;
        assert_eq!(param(denied.header("location").unwrap(), "error").as_deref(), Some("access_denied"));
    }

    async fn a_resident_signs_in_and_revocation_ends_her_token(server) {
        let client = register_app(server).await;
        let (verifier, challenge) = pkce();
        let aud = format!("{}/fhir", server.base());
        // SMART's authorize-post: the request as a form.
        let page = server.form("/auth/authorize", &[
            ("response_type", "code"), ("client_id", &client), ("redirect_uri", REDIRECT),
            ("scope", "launch/patient patient/*.rs"), ("aud", &aud),
            ("code_challenge", &challenge), ("code_challenge_method", "S256"),
        ], &[]).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains("登录 Meridian"), "Chinese without Accept-Language");
        let approval = server.form("/auth/authorize", &[("step", "login"), ("request", &page.field("request")), ("username", "zhao"), ("password", "zhao-secret")], &[]).await;
        assert!(!approval.body.contains("name=\"patient\""), "a resident's patient is her own");
        let redirect = server.form("/auth/authorize", &[("step", "approve"), ("signed", &approval.field("signed")), ("decision", "allow")], &[]).await;
        let code = param(redirect.header("location").unwrap(), "code").unwrap();
        // The public client names itself with HTTP Basic and no secret.
        let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{client}:")));
        let tokens = server.form("/auth/token", &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT), ("code_verifier", &verifier)], &[("authorization", &basic)]).await.json();
        assert_eq!(tokens["patient"], "zhao");
        let access = tokens["access_token"].as_str().unwrap();
        assert_eq!(server.fhir("/fhir/Patient", access).await.status, 200);
        assert_eq!(server.form("/auth/revoke", &[("token", access)], &[]).await.status, 200);
        let refused = server.fhir("/fhir/Patient", access).await;
        assert_eq!(refused.status, 401);
        assert!(refused.header("www-authenticate").unwrap().contains("revoked"));
    }

    async fn backend_clients_get_tokens_with_rs384_and_es384_assertions(server) {
        for key in [rsa_key("rsa"), ec_key("ec")] {
            let client = sync(|| server.auth.register_client(&json!({
                "token_endpoint_auth_method": "private_key_jwt",
                "grant_types": ["client_credentials"],
                "jwks": {"keys": [key.jwk]},
                "scope": "system/*.rs",
                "organization": "Organization/hospital-a",
            }))).unwrap();
            let audience = format!("{}/auth/token", server.base());
            let signed = assertion(&key, &client.client_id, &audience, &uuid::Uuid::new_v4().to_string(), 240);
            let fields = [
                ("grant_type", "client_credentials"),
                ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                ("client_assertion", signed.as_str()),
                ("scope", "system/Patient.rs"),
            ];
            let answer = server.form("/auth/token", &fields, &[]).await;
            assert_eq!(answer.status, 200, "{}", answer.body);
            let token = answer.json()["access_token"].as_str().unwrap().to_owned();
            assert_eq!(server.fhir("/fhir/Patient", &token).await.status, 200);
            // The same assertion again: 401 invalid_client.
            let replay = server.form("/auth/token", &fields, &[]).await;
            assert_eq!(replay.status, 401);
            assert_eq!(replay.json()["error"], "invalid_client");
        }
    }

    async fn forged_tokens_of_every_kind_get_401(server) {
        let good = server.token("admin", 600);
        assert_eq!(server.fhir("/fhir/Patient", &good).await.status, 200);
        let parts: Vec<&str> = good.split('.').collect();
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        let none = format!("{}.{}.", URL_SAFE_NO_PAD.encode(json!({"alg": "none"}).to_string()), parts[1]);
        let mut hs = Header::new(Algorithm::HS256);
        hs.kid = header["kid"].as_str().map(str::to_owned);
        let hs256 = jsonwebtoken::encode(&hs, &claims, &EncodingKey::from_secret(server.auth.jwks().to_string().as_bytes())).unwrap();
        let mut tampered = claims.clone();
        tampered["sub"] = json!("someone-else");
        let tampered = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(tampered.to_string()), parts[2]);
        let other_store = test_support::sqlite();
        let other_server = Authenticator::open(other_store.store.clone(), AuthConfig::new("http://meridian.test/fhir")).unwrap();
        other_server.add_account("admin", AccountKind::Administrator, None).unwrap();
        let other_key = other_server.issue_for_account("admin", None, 600).unwrap();
        let expired = server.token("admin", -600);
        let other_audience = sync(|| Authenticator::open(server.store.clone(), AuthConfig::new("https://elsewhere.example.org/fhir")).unwrap().issue_for_account("admin", None, 600)).unwrap();
        let oversized = format!("{}.{}.{}", parts[0], "A".repeat(9000), parts[2]);
        for forged in [none, hs256, tampered, other_key, expired, other_audience, oversized, "garbage".into(), "a.b.c".into()] {
            let reply = server.fhir("/fhir/Patient", &forged).await;
            assert_eq!(reply.status, 401, "{forged:.40}: {}", reply.body);
            assert!(reply.header("www-authenticate").unwrap().starts_with("Bearer realm=\"meridian\", error=\"invalid_token\""));
            assert_eq!(reply.json()["resourceType"], "OperationOutcome");
        }
        // No token, another scheme, an empty bearer: 401 too. Metadata needs none.
        for authorization in [None, Some("Basic YWRtaW46eA=="), Some("Bearer "), Some("Bearer")] {
            let headers: Vec<(&str, &str)> = authorization.iter().map(|a| ("authorization", *a)).collect();
            assert_eq!(server.get("/fhir/Patient/1", &headers).await.status, 401);
        }
        let metadata = server.get("/fhir/metadata", &[]).await;
        assert_eq!(metadata.status, 200);
        let security = &metadata.json()["rest"][0]["security"];
        assert_eq!(security["service"][0]["coding"][0]["code"], "SMART-on-FHIR");
        assert_eq!(security["extension"][0]["extension"][1]["valueUri"], format!("{}/auth/token", server.base()));
        for path in ["/fhir/.well-known/smart-configuration", "/.well-known/smart-configuration"] {
            let discovery = server.get(path, &[]).await.json();
            assert_eq!(discovery["token_endpoint"], format!("{}/auth/token", server.base()));
            assert_eq!(discovery["code_challenge_methods_supported"], json!(["S256"]));
            assert_eq!(discovery["token_endpoint_auth_signing_alg_values_supported"], json!(["RS384", "ES384"]));
        }
        assert_eq!(server.get("/auth/jwks", &[]).await.json(), server.auth.jwks());
        let openid = server.get("/fhir/.well-known/openid-configuration", &[]).await.json();
        assert_eq!(openid["issuer"], "http://meridian.test/fhir");
        assert_eq!(openid["id_token_signing_alg_values_supported"], json!(["ES256"]));
        // A break-glass reason in Chinese is read as UTF-8; a purpose that is not a code is 400.
        let reply = server.get("/fhir/Patient", &[("authorization", &format!("Bearer {good}")), ("x-purpose-of-use", "ETREAT"), ("x-break-glass-reason", "患者昏迷")]).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let reply = server.get("/fhir/Patient", &[("authorization", &format!("Bearer {good}")), ("x-purpose-of-use", "TREAT PLEASE")]).await;
        assert_eq!(reply.status, 400, "{}", reply.body);
    }

    async fn hostile_input_is_never_a_server_error(server) {
        let client = register_app(server).await;
        let long = "x".repeat(70_000);
        let percent = "%".repeat(500);
        let token_forms: Vec<Vec<(&str, &str)>> = vec![
            vec![],
            vec![("grant_type", "authorization_code")],
            vec![("grant_type", "authorization_code"), ("code", &long), ("redirect_uri", REDIRECT), ("code_verifier", "v"), ("client_id", &client)],
            vec![("grant_type", "refresh_token"), ("refresh_token", "\u{0}\u{1}"), ("client_id", &client)],
            vec![("grant_type", "client_credentials"), ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"), ("client_assertion", "e30.e30.e30")],
            vec![("grant_type", "client_credentials"), ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"), ("client_assertion", "eyJhbGciOiJSUzM4NCJ9.eyJpc3MiOjF9.AA")],
            vec![("grant_type", "🙂"), ("grant_type", "x")],
            vec![("client_id", &percent)],
        ];
        for fields in &token_forms {
            let reply = server.form("/auth/token", fields, &[]).await;
            assert!((400..500).contains(&reply.status), "{fields:?}: {} {}", reply.status, reply.body);
            assert!(reply.json()["error"].is_string());
        }
        let raw_bodies: [&[u8]; 5] = [b"%zz=%%&&==", b"\xff\xfe\x00", b"a=1&a=2&a=3", b"grant_type", &[b'='; 5000]];
        for path in ["/auth/token", "/auth/authorize", "/auth/revoke", "/auth/introspect", "/auth/register", "/auth/launch"] {
            for body in raw_bodies {
                for content_type in ["application/x-www-form-urlencoded", "text/plain", "application/json"] {
                    let reply = server.send("POST", path, &[("content-type", content_type), ("cookie", "meridian_lang=\u{7f}")], body).await;
                    assert!(reply.status < 500 && reply.status != 0, "{path} {content_type} {body:?}: {}", reply.status);
                }
            }
        }
        for query in ["", "?", "?client_id=", "?client_id=%00", &format!("?client_id={client}&redirect_uri=javascript:alert(1)"),
                      &format!("?client_id={client}&client_id={client}"), "?lang=%ff", &format!("?{}", "a=b&".repeat(2000)),
                      &format!("?client_id={client}&redirect_uri={}&response_type=code&scope=%3Cscript%3E", percent_encode(REDIRECT))] {
            let reply = server.get(&format!("/auth/authorize{query}"), &[("accept-language", "\u{1}zh;q=abc")]).await;
            assert!(reply.status < 500 && reply.status != 0, "{query}: {}", reply.status);
            assert!(!reply.body.contains("<script>"));
        }
        for (step, extra) in [("login", "request"), ("organization", "signed"), ("approve", "signed"), ("nonsense", "x")] {
            let reply = server.form("/auth/authorize", &[("step", step), (extra, &long[..3000]), ("username", "<script>"), ("password", &long[..2000])], &[]).await;
            assert_eq!(reply.status, 400, "{step}");
        }
        // Registration: only an administrator, only metadata.
        let resident = server.token("zhao", 600);
        let reply = server.send("POST", "/auth/register", &[("authorization", &format!("Bearer {resident}"))], b"{}").await;
        assert_eq!(reply.status, 403);
        assert_eq!(server.send("POST", "/auth/register", &[], b"{}").await.status, 401);
        let admin = server.token("admin", 600);
        for body in [&b"not json"[..], b"[]", b"{\"redirect_uris\": 7}", b"{\"grant_types\": [\"client_credentials\"]}"] {
            let reply = server.send("POST", "/auth/register", &[("authorization", &format!("Bearer {admin}"))], body).await;
            assert_eq!(reply.status, 400, "{}", reply.body);
        }
        // A header that is not UTF-8 and an absurd Authorization header.
        let good = format!("Bearer {admin}");
        let mut raw = format!("GET /fhir/Patient HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAuthorization: {good}\r\nX-Break-Glass-Reason: ", server.address).into_bytes();
        raw.extend_from_slice(b"\xff\xfe\r\nX-Purpose-Of-Use: ETREAT\r\n\r\n");
        let mut stream = tokio::net::TcpStream::connect(server.address).await.unwrap();
        stream.write_all(&raw).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 400"), "{}", String::from_utf8_lossy(&answer));
        let huge = format!("Bearer {}", "a".repeat(60_000));
        let reply = server.get("/fhir/Patient", &[("authorization", &huge)]).await;
        assert!(reply.status == 401 || reply.status == 431 || reply.status == 400, "{}", reply.status);
    }
}
