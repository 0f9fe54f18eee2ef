//! Sign-in at the command line: `meridian token`, `meridian user ...`, `meridian client ...`,
//! and the server's start-up (the authenticator over the store, the first administrator and
//! the file holding its password). Accounts and clients go straight into the store, so a
//! server already running on it sees them at its next request.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use access::signin::{AccountKind, Client, DEFAULT_AUDIENCE, ExternalProvider};
use access::{AuthConfig, Authenticator};
use anyhow::{Context, Result, bail};
use clap::Subcommand;
use store::Store;

use crate::config::{AuthSettings, StoreArgs, StoreConfig};

/// The account the first start makes, and its password file in the data directory.
pub const FIRST_ADMINISTRATOR: &str = "admin";
pub const PASSWORD_FILE: &str = "admin-password";

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add an account (or replace one of the same name), its password read from standard input.
    Add {
        #[command(flatten)]
        store: StoreArgs,
        /// The account name (letters, digits, . _ @ -).
        name: String,
        /// Read the password from standard input (one line).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// A practitioner with these roles (PractitionerRole/ID, repeatable).
        #[arg(long, value_name = "PractitionerRole/ID", conflicts_with_all = ["patient", "admin"])]
        practitioner_role: Vec<String>,
        /// A resident, linked to this Patient.
        #[arg(long, value_name = "Patient/ID", conflicts_with = "admin")]
        patient: Option<String>,
        /// An administrator.
        #[arg(long)]
        admin: bool,
    },
    /// List the accounts.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Register a client (SMART Backend Services with --jwks, or a public app with
    /// --redirect-uri); prints its client id.
    Add {
        #[command(flatten)]
        store: StoreArgs,
        /// The client id [default: a random one].
        #[arg(long)]
        id: Option<String>,
        /// A name to show on the sign-in pages.
        #[arg(long)]
        name: Option<String>,
        /// The client's public keys, a JWKS file (private_key_jwt, client_credentials).
        #[arg(long, value_name = "FILE")]
        jwks: Option<std::path::PathBuf>,
        /// A public app's redirect URI (repeatable): authorization code with PKCE.
        #[arg(long, value_name = "URI")]
        redirect_uri: Vec<String>,
        /// The organisation the client acts for; none for a platform client.
        #[arg(long, value_name = "Organization/ID")]
        organization: Option<String>,
        /// The scopes it may be granted.
        #[arg(long, default_value = "system/*.rs")]
        scope: String,
    },
    /// List the registered clients.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Sign-in for the server: the authenticator over `store` for `audience`, the first
/// administrator made (its password written to the data directory) when there is no account.
pub fn for_server(
    store: &Arc<dyn Store>,
    data: &Path,
    audience: &str,
    settings: &AuthSettings,
) -> Result<Arc<Authenticator>> {
    let mut config = AuthConfig::new(audience);
    if let Some(external) = &settings.external {
        let jwks = std::fs::read_to_string(&external.jwks_file).with_context(|| {
            format!(
                "reading the external provider's JWKS {}",
                external.jwks_file.display()
            )
        })?;
        config.external = Some(
            ExternalProvider::new(external.issuer.clone(), external.audience.clone(), &jwks)
                .map_err(|e| anyhow::anyhow!("{}: {e}", external.jwks_file.display()))?,
        );
        tracing::info!(
            issuer = external.issuer,
            "tokens of the external provider are accepted"
        );
    }
    let authenticator = Authenticator::open(Arc::clone(store), config)
        .context("opening sign-in (keys in the store)")?;
    authenticator.remember_audience()?;
    first_administrator(&authenticator, data)?;
    Ok(Arc::new(authenticator))
}

/// Removes expired codes, refresh tokens, revocations and assertion ids every hour on a
/// thread of its own; stops when the answered `Sender` is dropped.
pub fn schedule_pruning(authenticator: Arc<Authenticator>) -> Result<std::sync::mpsc::Sender<()>> {
    crate::schedule::every(
        "sign-in-pruning",
        std::time::Duration::from_secs(3600),
        crate::schedule::First::AtOnce,
        move || match authenticator.prune_expired() {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "pruned expired sign-in state"),
            Err(error) => tracing::warn!(%error, "pruning expired sign-in state"),
        },
    )
}

/// Makes the first administrator when the store has no account, writing its password to
/// `DATA/admin-password` (mode 0600).
fn first_administrator(authenticator: &Authenticator, data: &Path) -> Result<()> {
    let Some(password) = authenticator.bootstrap_administrator(FIRST_ADMINISTRATOR)? else {
        return Ok(());
    };
    std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
    let path = data.join(PASSWORD_FILE);
    write_private(&path, &format!("{password}\n"))?;
    tracing::warn!(
        account = FIRST_ADMINISTRATOR,
        password_file = %path.display(),
        "made the first administrator account; its one-time password is in {} (readable by \
         this user only). `meridian token` prints an administrator's access token; replace the \
         password with `meridian user add {FIRST_ADMINISTRATOR} --admin --password-stdin`",
        path.display()
    );
    Ok(())
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// The authenticator a command uses: the audience the server on this store announced.
fn open(config: &StoreConfig) -> Result<(Arc<dyn Store>, Authenticator)> {
    let store = crate::stores::open_store(config)?;
    let audience =
        Authenticator::stored_audience(&*store)?.unwrap_or_else(|| DEFAULT_AUDIENCE.to_owned());
    let authenticator = Authenticator::open(Arc::clone(&store), AuthConfig::new(audience))?;
    Ok((store, authenticator))
}

/// `meridian token`: prints an access token signed with the server's key.
pub fn token(
    config: &StoreConfig,
    user: Option<&str>,
    scope: Option<&str>,
    ttl: i64,
) -> Result<()> {
    if ttl <= 0 || ttl > 366 * 86_400 {
        bail!("--ttl is a number of seconds from 1 to a year");
    }
    let (_, authenticator) = open(config)?;
    let name = match user {
        Some(name) => name.to_owned(),
        None => {
            first_administrator(&authenticator, &config.data)?;
            authenticator
                .accounts()?
                .into_iter()
                .find(|a| a.kind == AccountKind::Administrator)
                .map(|a| a.name)
                .context("there is no administrator account; add one with `meridian user add NAME --admin --password-stdin`")?
        }
    };
    let token = authenticator.issue_for_account(&name, scope, ttl)?;
    println!("{token}");
    Ok(())
}

pub fn user(command: UserCommand) -> Result<()> {
    match command {
        UserCommand::Add {
            store,
            name,
            password_stdin: _,
            practitioner_role,
            patient,
            admin,
        } => {
            let config = StoreConfig::resolve(&store, |key| std::env::var(key).ok())?;
            let mut password = String::new();
            std::io::stdin()
                .take(4096)
                .read_to_string(&mut password)
                .context("reading the password from standard input")?;
            let password = password.lines().next().unwrap_or("").to_owned();
            if password.is_empty() {
                bail!("no password on standard input");
            }
            let kind = if admin {
                AccountKind::Administrator
            } else if let Some(patient) = patient {
                AccountKind::Resident { patient }
            } else if !practitioner_role.is_empty() {
                let ctx = crate::operator("user-add");
                let repository = crate::stores::open_repository(&config, &ctx)?;
                let roles = practitioner_role
                    .iter()
                    .map(|role| Authenticator::resolve_role(&repository, &ctx, role))
                    .collect::<Result<Vec<_>, _>>()?;
                for role in &roles {
                    if role.organization.is_none() || role.practitioner.is_none() {
                        bail!("{} names no organization or no practitioner", role.role);
                    }
                }
                AccountKind::Practitioner { roles }
            } else {
                bail!("say what the account is: --practitioner-role, --patient or --admin");
            };
            let (_, authenticator) = open(&config)?;
            let account = authenticator.add_account(&name, kind, Some(&password))?;
            println!("{}", describe(&account));
            Ok(())
        }
        UserCommand::List { store } => {
            let config = StoreConfig::resolve(&store, |key| std::env::var(key).ok())?;
            let (_, authenticator) = open(&config)?;
            for account in authenticator.accounts()? {
                println!("{}", describe(&account));
            }
            Ok(())
        }
    }
}

fn describe(account: &access::signin::Account) -> String {
    match &account.kind {
        AccountKind::Administrator => format!("{}\tadministrator", account.name),
        AccountKind::Resident { patient } => format!("{}\tresident\t{patient}", account.name),
        AccountKind::Practitioner { roles } => format!(
            "{}\tpractitioner\t{}",
            account.name,
            roles
                .iter()
                .map(|r| format!(
                    "{} ({} at {})",
                    r.role,
                    r.practitioner.as_deref().unwrap_or("?"),
                    r.organization.as_deref().unwrap_or("?")
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

pub fn client(command: ClientCommand) -> Result<()> {
    match command {
        ClientCommand::Add {
            store,
            id,
            name,
            jwks,
            redirect_uri,
            organization,
            scope,
        } => {
            let config = StoreConfig::resolve(&store, |key| std::env::var(key).ok())?;
            let mut metadata = serde_json::json!({"scope": scope});
            if let Some(name) = name {
                metadata["client_name"] = name.into();
            }
            if let Some(organization) = organization {
                metadata["organization"] = organization.into();
            }
            match (jwks, redirect_uri.is_empty()) {
                (Some(path), true) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    let keys: serde_json::Value = serde_json::from_str(&text)
                        .with_context(|| format!("{} is not JSON", path.display()))?;
                    metadata["jwks"] = keys;
                    metadata["token_endpoint_auth_method"] = "private_key_jwt".into();
                    metadata["grant_types"] = serde_json::json!(["client_credentials"]);
                }
                (None, false) => {
                    metadata["redirect_uris"] = serde_json::json!(redirect_uri);
                    metadata["token_endpoint_auth_method"] = "none".into();
                    metadata["grant_types"] =
                        serde_json::json!(["authorization_code", "refresh_token"]);
                }
                _ => {
                    bail!("give either --jwks (a backend client) or --redirect-uri (a public app)")
                }
            }
            let (_, authenticator) = open(&config)?;
            let id = match id {
                Some(id) => id,
                None => uuid::Uuid::new_v4().to_string(),
            };
            let client = Client::from_metadata(&metadata, &id)
                .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.description))?;
            authenticator
                .put_client(&client)
                .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.description))?;
            println!("{}", client.client_id);
            Ok(())
        }
        ClientCommand::List { store } => {
            let config = StoreConfig::resolve(&store, |key| std::env::var(key).ok())?;
            let (_, authenticator) = open(&config)?;
            for client in authenticator.clients()? {
                println!("{}", client.to_metadata());
            }
            Ok(())
        }
    }
}
