//! Configuration: built-in defaults < a config file < `MERIDIAN_*` environment variables <
//! command-line flags. Raw values are gathered first, then checked once: an invalid value stops
//! start-up with a message that names where it came from.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

const DEFAULT_CONFIG: &str = include_str!("default-config.toml");

/// Which store to open: every command that touches data takes these.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct StoreArgs {
    /// A TOML config file (also MERIDIAN_CONFIG).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The embedded store's directory [default: ./meridian-data].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Use PostgreSQL at this URL instead of the embedded store.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// The embedded store's commits: `full` (each on disk before it is acknowledged) or
    /// `normal` (they survive the process dying; the last ones may be lost if the machine
    /// loses power) [default: full].
    #[arg(long, value_name = "full|normal")]
    pub sqlite_synchronous: Option<String>,
}

/// The flags of `meridian serve`. Each overrides the same key from the environment and file.
#[derive(Debug, Default, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// The largest request body accepted, in bytes [default: 16 MiB].
    #[arg(long, value_name = "BYTES")]
    pub max_body_bytes: Option<String>,
    /// The public FHIR base URL used in links.
    #[arg(long, value_name = "URL")]
    pub public_base: Option<String>,
    /// Hosts answered besides loopback ones when no public base is set, comma-separated
    /// (`hie.example.org,10.0.0.5:8080`).
    #[arg(long, value_name = "HOSTS")]
    pub allowed_hosts: Option<String>,
    /// Log filter, e.g. `info` or `meridian=debug` [default: info].
    #[arg(long, value_name = "FILTER")]
    pub log: Option<String>,
    /// Log format: text or json [default: text].
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Seconds a phone health code stays valid [default: 300].
    #[arg(long, value_name = "SECONDS")]
    pub health_code_validity: Option<String>,
    /// Seconds a client has to send a request head [default: 10].
    #[arg(long, value_name = "SECONDS")]
    pub header_read_timeout: Option<String>,
    /// Seconds a request body may stall before 408 [default: 30].
    #[arg(long, value_name = "SECONDS")]
    pub body_read_timeout: Option<String>,
    /// Bytes a second a request body must average after its first body-read-timeout seconds;
    /// 0 checks only for stalls [default: 1024].
    #[arg(long, value_name = "BYTES")]
    pub body_min_rate: Option<String>,
    /// Seconds an idle kept-alive connection stays open [default: 60].
    #[arg(long, value_name = "SECONDS")]
    pub keep_alive_timeout: Option<String>,
    /// Seconds a client may take none of its answer before it is disconnected [default: 60].
    #[arg(long, value_name = "SECONDS")]
    pub send_timeout: Option<String>,
    /// Requests served on one connection before it is closed [default: 1000].
    #[arg(long, value_name = "N")]
    pub max_requests_per_connection: Option<String>,
    /// Connections served at once; more get 503 [default: 10000, or the open-file limit less
    /// 256 when that is lower].
    #[arg(long, value_name = "N")]
    pub max_connections: Option<String>,
    /// Store reads (reads, searches, history) run at once; more wait their turn [default:
    /// twice the cores, at least 4].
    #[arg(long, value_name = "N")]
    pub max_concurrent_reads: Option<String>,
    /// Store writes run at once, queued apart from reads [default: eight per core on the
    /// embedded store, four per core on PostgreSQL within its pool].
    #[arg(long, value_name = "N")]
    pub max_concurrent_writes: Option<String>,
    /// Threads running durable jobs (exports); 0 leaves them to other servers on the same
    /// store [default: 2].
    #[arg(long, value_name = "N")]
    pub job_workers: Option<String>,
    /// Where large files (export files) are kept when no S3 bucket is set [default: DATA/blobs].
    #[arg(long, value_name = "DIR")]
    pub blob_dir: Option<String>,
    /// S3-compatible storage for large files instead of blob_dir: its endpoint URL.
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// The S3 bucket (credentials from MERIDIAN_S3_ACCESS_KEY_ID and
    /// MERIDIAN_S3_SECRET_ACCESS_KEY).
    #[arg(long, value_name = "BUCKET")]
    pub s3_bucket: Option<String>,
    /// Sign-in: `on` (every request but metadata needs a bearer token) or `off` (local
    /// experiments only: refused unless listening on a loopback address) [default: on].
    #[arg(long, value_name = "on|off")]
    pub auth: Option<String>,
    /// Accept the access tokens of this external OpenID Connect issuer too.
    #[arg(long, value_name = "URL")]
    pub auth_external_issuer: Option<String>,
    /// The external issuer's public keys: a JWKS file.
    #[arg(long, value_name = "FILE")]
    pub auth_external_jwks: Option<String>,
    /// Seconds between checkpoints of the verifiable log [default: 10].
    #[arg(long, value_name = "SECONDS")]
    pub checkpoint_interval: Option<String>,
    /// A NATS server (nats://host:4222) every notification event is also published to
    /// (JetStream stream MERIDIAN, subjects meridian.>) [default: none].
    #[arg(long, value_name = "URL")]
    pub nats: Option<String>,
    /// Take HL7 v2 messages over MLLP on this address (e.g. 0.0.0.0:2575) [default: off].
    #[arg(long, value_name = "ADDR")]
    pub mllp_listen: Option<String>,
    /// Read kiosks' readings from this MQTT broker (host:port, topic
    /// meridian/kiosk/+/readings) [default: off].
    #[arg(long, value_name = "HOST:PORT")]
    pub mqtt: Option<String>,
    /// The verifiable log's origin, the name on its checkpoints and key, used when the store
    /// has no log key yet [default: meridian.local/ledger].
    #[arg(long, value_name = "NAME")]
    pub ledger_origin: Option<String>,
    /// A witness that cosigns the log's checkpoints, as URL=VERIFIER_KEY (the key as
    /// `meridian ledger witness` prints it). Repeatable.
    #[arg(long, value_name = "URL=KEY")]
    pub witness: Vec<String>,
}

/// The keys of a config file, all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data: Option<PathBuf>,
    database_url: Option<String>,
    sqlite_synchronous: Option<String>,
    max_body_bytes: Option<u64>,
    public_base: Option<String>,
    allowed_hosts: Option<Vec<String>>,
    log: Option<String>,
    log_format: Option<String>,
    health_code_validity: Option<u64>,
    health_code_key_rotation_days: Option<u64>,
    workflow_deadlines: Option<String>,
    referral_release_hours: Option<u64>,
    subscription_http_hosts: Option<Vec<String>>,
    nats: Option<String>,
    mllp_listen: Option<String>,
    mqtt: Option<String>,
    /// The HL7 v2 senders (`[[intake_senders]]`); none accepts every sender.
    intake_senders: Option<Vec<intake::SenderConfig>>,
    identity_population: Option<u64>,
    identity_model_interval: Option<u64>,
    identity_model_growth: Option<u64>,
    indicator_interval: Option<u64>,
    header_read_timeout: Option<Seconds>,
    body_read_timeout: Option<Seconds>,
    body_min_rate: Option<u64>,
    keep_alive_timeout: Option<Seconds>,
    send_timeout: Option<Seconds>,
    max_requests_per_connection: Option<u64>,
    max_connections: Option<u64>,
    max_concurrent_reads: Option<u64>,
    max_concurrent_writes: Option<u64>,
    job_workers: Option<u64>,
    blob_dir: Option<PathBuf>,
    s3_endpoint: Option<String>,
    s3_bucket: Option<String>,
    checkpoint_interval: Option<u64>,
    ledger_origin: Option<String>,
    witnesses: Option<Vec<String>>,
    s3_region: Option<String>,
    s3_prefix: Option<String>,
    auth: Option<String>,
    auth_external_issuer: Option<String>,
    auth_external_jwks: Option<PathBuf>,
    auth_external_audience: Option<String>,
}

/// Seconds in a config file: whole (`10`) or not (`0.5`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged)]
enum Seconds {
    Whole(u64),
    Fraction(f64),
}

impl std::fmt::Display for Seconds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Seconds::Whole(n) => write!(f, "{n}"),
            Seconds::Fraction(x) => write!(f, "{x}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where the data lives, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    pub data: PathBuf,
    pub database_url: Option<String>,
    /// How hard the embedded store pushes each commit to disk.
    pub sqlite_durability: store_sqlite::Durability,
    /// What every command's repository enforces on workflow resources (deadlines by
    /// priority, the release of reserved capacity).
    pub workflow: workflow::WorkflowConfig,
    /// Where subscriptions may have notifications posted over plain HTTP.
    pub endpoints: notify::EndpointPolicy,
    /// The HL7 v2 senders configured (the listener and `meridian intake replay` match
    /// messages to them); none accepts every sender.
    pub intake_senders: Vec<intake::SenderConfig>,
}

/// The checked configuration of `meridian serve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    pub store: StoreConfig,
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    pub public_base: Option<String>,
    /// Hosts answered besides loopback ones when no public base is set.
    pub allowed_hosts: Vec<server::AllowedHost>,
    pub log: String,
    pub log_format: LogFormat,
    /// Seconds a phone health code stays valid.
    pub health_code_validity: u64,
    /// The signing key is replaced when older than this many days.
    pub health_code_key_rotation_days: u64,
    /// Residents the platform serves (the matcher's prior until it learns its own).
    pub identity_population: u64,
    /// Seconds between checks whether the matching model is due for re-estimation; 0 turns
    /// the schedule off (`Person/$estimate-model` still re-estimates on demand).
    pub identity_model_interval: u64,
    /// Percent of Patients written since the last estimation that make the next one due.
    pub identity_model_growth: u64,
    /// Seconds between computations of the indicators into kept MeasureReports; 0 turns the
    /// schedule off (`$evaluate-measure` still computes on demand).
    pub indicator_interval: u64,
    pub connections: ConnectionSettings,
    /// Threads running durable jobs; 0: none in this process.
    pub job_workers: usize,
    /// Where large files live.
    pub blobs: BlobSettings,
    /// Sign-in: whether requests need tokens, and an external provider's.
    pub auth: AuthSettings,
    /// Seconds between checkpoints of the verifiable log.
    pub checkpoint_interval: u64,
    /// The NATS server notification events are published to, if any.
    pub nats: Option<String>,
    /// The MLLP listener's address, if any.
    pub mllp_listen: Option<SocketAddr>,
    /// The MQTT broker kiosks publish to, if any.
    pub mqtt: Option<String>,
    pub ledger_origin: String,
    pub witnesses: Vec<server::WitnessConfig>,
}

/// Sign-in's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    /// `false` only with `--auth off` on a loopback address.
    pub enabled: bool,
    pub external: Option<ExternalSettings>,
}

/// An external OpenID Connect provider whose tokens are accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalSettings {
    pub issuer: String,
    pub jwks_file: PathBuf,
    /// The `aud` its tokens carry (this server's FHIR base when unset).
    pub audience: Option<String>,
}

/// Where large files (export files, later DICOM instances) live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobSettings {
    Files(PathBuf),
    S3(blob_s3::S3Config),
}

/// How long clients may take and how many connections are served (`server::ConnectionLimits`
/// but for the connection limit, which may be left to the open-file limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionSettings {
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub body_min_rate: u64,
    pub keep_alive_timeout: Duration,
    pub send_timeout: Duration,
    pub max_requests_per_connection: u64,
    /// `None`: derived at start-up from the open-file limit (`serve`).
    pub max_connections: Option<usize>,
    /// Store reads and writes admitted at once (`server::WorkLimits`); `None`: from the cores.
    pub max_concurrent_reads: Option<usize>,
    pub max_concurrent_writes: Option<usize>,
}

/// The most connections the configuration accepts: beyond it, memory runs out before sockets.
const MAX_CONNECTIONS_CEILING: u64 = 1_000_000;

/// The longest timeout the configuration accepts, in seconds (a day).
const TIMEOUT_CEILING: f64 = 86_400.0;

/// One raw value and where it came from, for error messages.
struct Raw {
    value: String,
    source: String,
}

/// The sources of configuration, in the order they are consulted.
struct Layers<E> {
    defaults: FileConfig,
    file: FileConfig,
    file_name: String,
    env: E,
}

impl<E: Fn(&str) -> Option<String>> Layers<E> {
    fn new(config: Option<&PathBuf>, env: E) -> Result<Layers<E>> {
        let defaults: FileConfig =
            toml::from_str(DEFAULT_CONFIG).context("the built-in default config")?;
        let file_path = config
            .cloned()
            .or_else(|| env("MERIDIAN_CONFIG").map(PathBuf::from));
        let file = match &file_path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .with_context(|| format!("config file {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let file_name = file_path
            .map(|p| format!("config file {}", p.display()))
            .unwrap_or_default();
        Ok(Layers {
            defaults,
            file,
            file_name,
            env,
        })
    }

    /// The flag, else the environment variable, else the file, else the default.
    fn pick(
        &self,
        flag: Option<String>,
        variable: &str,
        from_file: impl Fn(&FileConfig) -> Option<String>,
    ) -> Option<Raw> {
        if let Some(value) = flag {
            let name = variable
                .trim_start_matches("MERIDIAN_")
                .to_lowercase()
                .replace('_', "-");
            return Some(Raw {
                value,
                source: format!("flag --{name}"),
            });
        }
        if let Some(value) = (self.env)(variable) {
            return Some(Raw {
                value,
                source: format!("environment variable {variable}"),
            });
        }
        if let Some(value) = from_file(&self.file) {
            return Some(Raw {
                value,
                source: self.file_name.clone(),
            });
        }
        from_file(&self.defaults).map(|value| Raw {
            value,
            source: "built-in default".into(),
        })
    }

    fn store(&self, args: &StoreArgs) -> Result<StoreConfig> {
        let path_text = |p: &Option<PathBuf>| p.as_ref().map(|p| p.to_string_lossy().into_owned());
        let data = self
            .pick(path_text(&args.data), "MERIDIAN_DATA", |f| {
                path_text(&f.data)
            })
            .context("no data directory")?;
        if data.value.is_empty() {
            bail!("{}: the data directory is empty", data.source);
        }
        let database_url = self
            .pick(args.database_url.clone(), "MERIDIAN_DATABASE_URL", |f| {
                f.database_url.clone()
            })
            .filter(|raw| !raw.value.is_empty());
        if let Some(raw) = &database_url
            && !(raw.value.starts_with("postgres://") || raw.value.starts_with("postgresql://"))
        {
            bail!("{}: '{}' is not a postgres:// URL", raw.source, raw.value);
        }
        let synchronous = self
            .pick(
                args.sqlite_synchronous.clone(),
                "MERIDIAN_SQLITE_SYNCHRONOUS",
                |f| f.sqlite_synchronous.clone(),
            )
            .context("no sqlite_synchronous setting")?;
        let sqlite_durability = match synchronous.value.trim() {
            "full" => store_sqlite::Durability::Full,
            "normal" if database_url.is_none() => store_sqlite::Durability::Normal,
            "normal" => bail!(
                "{}: sqlite_synchronous normal applies to the embedded store, not to \
                 PostgreSQL (whose commits follow the server's synchronous_commit)",
                synchronous.source
            ),
            other => bail!(
                "{}: sqlite_synchronous '{other}' is neither full nor normal",
                synchronous.source
            ),
        };
        let mut workflow = workflow::WorkflowConfig::default();
        if let Some(raw) = self.pick(None, "MERIDIAN_WORKFLOW_DEADLINES", |f| {
            f.workflow_deadlines.clone()
        }) {
            for item in raw
                .value
                .split(',')
                .map(str::trim)
                .filter(|i| !i.is_empty())
            {
                let parsed = item.split_once('=').and_then(|(priority, minutes)| {
                    let minutes: i64 = minutes.trim().parse().ok().filter(|m| *m > 0)?;
                    Some((priority.trim(), minutes * workflow::config::MINUTE))
                });
                match parsed {
                    Some(("stat", d)) => workflow.stat = d,
                    Some(("asap", d)) => workflow.asap = d,
                    Some(("urgent", d)) => workflow.urgent = d,
                    Some(("routine", d)) => workflow.routine = d,
                    _ => bail!(
                        "{}: '{item}' is not PRIORITY=MINUTES (priorities stat, asap, urgent, routine)",
                        raw.source
                    ),
                }
            }
        }
        if let Some(raw) = self.pick(None, "MERIDIAN_REFERRAL_RELEASE_HOURS", |f| {
            f.referral_release_hours.map(|n| n.to_string())
        }) {
            let hours: i64 = raw
                .value
                .parse()
                .ok()
                .filter(|h| *h >= 0)
                .with_context(|| {
                    format!("{}: '{}' is not a number of hours", raw.source, raw.value)
                })?;
            workflow.release_before = hours * 60 * workflow::config::MINUTE;
        }
        let endpoints = notify::EndpointPolicy {
            allowed_http_hosts: match self.pick(None, "MERIDIAN_SUBSCRIPTION_HTTP_HOSTS", |f| {
                f.subscription_http_hosts.as_ref().map(|h| h.join(","))
            }) {
                Some(raw) => raw
                    .value
                    .split(',')
                    .map(str::trim)
                    .filter(|h| !h.is_empty())
                    .map(str::to_owned)
                    .collect(),
                None => Vec::new(),
            },
        };
        Ok(StoreConfig {
            data: PathBuf::from(data.value),
            database_url: database_url.map(|r| r.value),
            sqlite_durability,
            workflow,
            endpoints,
            intake_senders: self.file.intake_senders.clone().unwrap_or_default(),
        })
    }
}

/// Sign-in's settings, checked: `off` only on a loopback address.
fn auth_settings<E: Fn(&str) -> Option<String>>(
    layers: &Layers<E>,
    args: &ServeArgs,
    listen: SocketAddr,
) -> Result<AuthSettings> {
    let auth = layers
        .pick(args.auth.clone(), "MERIDIAN_AUTH", |f| f.auth.clone())
        .context("no auth setting")?;
    let enabled = match auth.value.trim() {
        "on" => true,
        "off" if listen.ip().is_loopback() => false,
        "off" => bail!(
            "{}: auth off is refused on {listen}: without sign-in anyone who reaches the port \
             reads and writes everything, so it is allowed only on a loopback address",
            auth.source
        ),
        other => bail!("{}: auth '{other}' is neither on nor off", auth.source),
    };
    let issuer = layers
        .pick(
            args.auth_external_issuer.clone(),
            "MERIDIAN_AUTH_EXTERNAL_ISSUER",
            |f| f.auth_external_issuer.clone(),
        )
        .filter(|raw| !raw.value.is_empty());
    let jwks = layers
        .pick(
            args.auth_external_jwks.clone(),
            "MERIDIAN_AUTH_EXTERNAL_JWKS",
            |f| {
                f.auth_external_jwks
                    .as_ref()
                    .map(|p| p.display().to_string())
            },
        )
        .filter(|raw| !raw.value.is_empty());
    let audience = layers
        .pick(None, "MERIDIAN_AUTH_EXTERNAL_AUDIENCE", |f| {
            f.auth_external_audience.clone()
        })
        .filter(|raw| !raw.value.is_empty())
        .map(|raw| raw.value);
    let external = match (issuer, jwks) {
        (None, None) => None,
        (Some(issuer), Some(jwks)) => Some(ExternalSettings {
            issuer: issuer.value,
            jwks_file: PathBuf::from(jwks.value),
            audience,
        }),
        (Some(raw), None) | (None, Some(raw)) => bail!(
            "{}: an external sign-in provider needs both auth_external_issuer and \
             auth_external_jwks",
            raw.source
        ),
    };
    Ok(AuthSettings { enabled, external })
}

impl StoreConfig {
    /// The store settings alone (for commands other than `serve`).
    pub fn resolve(args: &StoreArgs, env: impl Fn(&str) -> Option<String>) -> Result<StoreConfig> {
        Layers::new(args.config.as_ref(), env)?.store(args)
    }
}

impl ServeConfig {
    /// Layers defaults, file, environment (through `env`) and flags, then checks the result.
    pub fn resolve(args: &ServeArgs, env: impl Fn(&str) -> Option<String>) -> Result<ServeConfig> {
        let layers = Layers::new(args.store.config.as_ref(), env)?;
        let store = layers.store(&args.store)?;

        let listen = layers
            .pick(args.listen.clone(), "MERIDIAN_LISTEN", |f| f.listen.clone())
            .context("no listen address")?;
        let listen: SocketAddr = listen.value.parse().map_err(|_| {
            anyhow::anyhow!(
                "{}: '{}' is not an address such as 127.0.0.1:8080",
                listen.source,
                listen.value
            )
        })?;

        let max_body = layers
            .pick(
                args.max_body_bytes.clone(),
                "MERIDIAN_MAX_BODY_BYTES",
                |f| f.max_body_bytes.map(|n| n.to_string()),
            )
            .context("no body limit")?;
        let max_body_bytes: usize = match max_body.value.parse() {
            Ok(n) if n > 0 => n,
            _ => bail!(
                "{}: '{}' is not a positive number of bytes",
                max_body.source,
                max_body.value
            ),
        };

        let public_base = layers
            .pick(args.public_base.clone(), "MERIDIAN_PUBLIC_BASE", |f| {
                f.public_base.clone()
            })
            .filter(|raw| !raw.value.is_empty());
        if let Some(raw) = &public_base
            && !(raw.value.starts_with("http://") || raw.value.starts_with("https://"))
        {
            bail!("{}: '{}' is not an http(s) URL", raw.source, raw.value);
        }

        let allowed_hosts =
            match layers.pick(args.allowed_hosts.clone(), "MERIDIAN_ALLOWED_HOSTS", |f| {
                f.allowed_hosts.as_ref().map(|hosts| hosts.join(","))
            }) {
                None => Vec::new(),
                Some(raw) => raw
                    .value
                    .split(',')
                    .map(str::trim)
                    .filter(|host| !host.is_empty())
                    .map(|host| {
                        server::AllowedHost::parse(host)
                            .map_err(|message| anyhow::anyhow!("{}: {message}", raw.source))
                    })
                    .collect::<Result<_>>()?,
            };

        let log = layers
            .pick(args.log.clone(), "MERIDIAN_LOG", |f| f.log.clone())
            .context("no log filter")?;
        let log_format = layers
            .pick(args.log_format.clone(), "MERIDIAN_LOG_FORMAT", |f| {
                f.log_format.clone()
            })
            .context("no log format")?;
        let log_format = match log_format.value.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => bail!(
                "{}: log format '{other}' is neither text nor json",
                log_format.source
            ),
        };

        let positive = |raw: Raw, what: &str| -> Result<u64> {
            match raw.value.parse::<u64>() {
                Ok(n) if n > 0 => Ok(n),
                _ => bail!(
                    "{}: '{}' is not a positive number of {what}",
                    raw.source,
                    raw.value
                ),
            }
        };
        let health_code_validity = positive(
            layers
                .pick(
                    args.health_code_validity.clone(),
                    "MERIDIAN_HEALTH_CODE_VALIDITY",
                    |f| f.health_code_validity.map(|n| n.to_string()),
                )
                .context("no health code validity")?,
            "seconds",
        )?;
        let health_code_key_rotation_days = positive(
            layers
                .pick(None, "MERIDIAN_HEALTH_CODE_KEY_ROTATION_DAYS", |f| {
                    f.health_code_key_rotation_days.map(|n| n.to_string())
                })
                .context("no key rotation period")?,
            "days",
        )?;
        let identity_population = positive(
            layers
                .pick(None, "MERIDIAN_IDENTITY_POPULATION", |f| {
                    f.identity_population.map(|n| n.to_string())
                })
                .context("no identity population")?,
            "residents",
        )?;

        let interval = layers
            .pick(None, "MERIDIAN_IDENTITY_MODEL_INTERVAL", |f| {
                f.identity_model_interval.map(|n| n.to_string())
            })
            .context("no identity model interval")?;
        let identity_model_interval: u64 = interval.value.parse().map_err(|_| {
            anyhow::anyhow!(
                "{}: '{}' is not a number of seconds (0 turns the schedule off)",
                interval.source,
                interval.value
            )
        })?;
        let interval = layers
            .pick(None, "MERIDIAN_INDICATOR_INTERVAL", |f| {
                f.indicator_interval.map(|n| n.to_string())
            })
            .context("no indicator interval")?;
        let indicator_interval: u64 = interval.value.parse().map_err(|_| {
            anyhow::anyhow!(
                "{}: '{}' is not a number of seconds (0 turns the schedule off)",
                interval.source,
                interval.value
            )
        })?;
        let growth = layers
            .pick(None, "MERIDIAN_IDENTITY_MODEL_GROWTH", |f| {
                f.identity_model_growth.map(|n| n.to_string())
            })
            .context("no identity model growth")?;
        let identity_model_growth = match growth.value.parse::<u64>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => bail!(
                "{}: '{}' is not a percentage from 1 to 1000",
                growth.source,
                growth.value
            ),
        };

        let connections = connection_settings(&layers, args)?;

        let job_workers = match layers.pick(args.job_workers.clone(), "MERIDIAN_JOB_WORKERS", |f| {
            f.job_workers.map(|n| n.to_string())
        }) {
            None => 2,
            Some(raw) => match raw.value.trim().parse::<usize>() {
                Ok(n) if n <= 64 => n,
                _ => bail!(
                    "{}: '{}' is not a number of workers from 0 to 64",
                    raw.source,
                    raw.value
                ),
            },
        };
        let blobs = blob_settings(&layers, args, &store)?;
        let auth = auth_settings(&layers, args, listen)?;
        let checkpoint_interval = positive(
            layers
                .pick(
                    args.checkpoint_interval.clone(),
                    "MERIDIAN_CHECKPOINT_INTERVAL",
                    |f| f.checkpoint_interval.map(|n| n.to_string()),
                )
                .context("no checkpoint interval")?,
            "seconds",
        )?;
        let ledger_origin = layers
            .pick(args.ledger_origin.clone(), "MERIDIAN_LEDGER_ORIGIN", |f| {
                f.ledger_origin.clone()
            })
            .context("no ledger origin")?;
        if ledger_origin.value.is_empty()
            || ledger_origin
                .value
                .contains(|c: char| c == '+' || c.is_whitespace() || c.is_control())
        {
            bail!(
                "{}: '{}' is not a log origin (a name such as hie.example.org/ledger)",
                ledger_origin.source,
                ledger_origin.value
            );
        }
        let witnesses = if args.witness.is_empty() {
            layers.file.witnesses.clone().unwrap_or_default()
        } else {
            args.witness.clone()
        }
        .iter()
        .map(|text| parse_witness(text))
        .collect::<Result<Vec<_>>>()?;

        let nats = layers
            .pick(args.nats.clone(), "MERIDIAN_NATS", |f| f.nats.clone())
            .map(|raw| raw.value)
            .filter(|url| !url.is_empty());
        if let Some(url) = &nats
            && !(url.starts_with("nats://") || url.starts_with("tls://"))
        {
            bail!("'{url}' is not a nats:// URL");
        }
        let mllp_listen = match layers
            .pick(args.mllp_listen.clone(), "MERIDIAN_MLLP_LISTEN", |f| {
                f.mllp_listen.clone()
            })
            .filter(|raw| !raw.value.is_empty())
        {
            Some(raw) => Some(raw.value.parse::<SocketAddr>().with_context(|| {
                format!(
                    "{}: '{}' is not an address (HOST:PORT)",
                    raw.source, raw.value
                )
            })?),
            None => None,
        };
        let mqtt = layers
            .pick(args.mqtt.clone(), "MERIDIAN_MQTT", |f| f.mqtt.clone())
            .map(|raw| raw.value)
            .filter(|broker| !broker.is_empty());
        Ok(ServeConfig {
            mllp_listen,
            mqtt,
            nats,
            checkpoint_interval,
            ledger_origin: ledger_origin.value,
            witnesses,
            auth,
            job_workers,
            blobs,
            identity_model_interval,
            identity_model_growth,
            indicator_interval,
            connections,
            health_code_validity,
            health_code_key_rotation_days,
            identity_population,
            store,
            listen,
            max_body_bytes,
            public_base: public_base.map(|r| r.value.trim_end_matches('/').to_owned()),
            allowed_hosts,
            log: log.value,
            log_format,
        })
    }
}

/// `URL=VERIFIER_KEY`: a witness's submission prefix and its cosigning key.
fn parse_witness(text: &str) -> Result<server::WitnessConfig> {
    let (url, key) = text
        .split_once('=')
        .with_context(|| format!("witness '{text}' is not URL=VERIFIER_KEY"))?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        bail!("witness '{text}': '{url}' is not an http(s) URL");
    }
    let key =
        ledger::VerifierKey::parse(key).map_err(|e| anyhow::anyhow!("witness '{text}': {e}"))?;
    if key.algorithm != ledger::note::ALG_COSIGNATURE {
        bail!("witness '{text}': the key is not a witness's cosigning key");
    }
    Ok(server::WitnessConfig {
        url: url.trim_end_matches('/').to_owned(),
        key,
    })
}

/// Where large files live: S3 when a bucket is configured (with its endpoint and the
/// credentials from the environment), else a directory.
fn blob_settings<E: Fn(&str) -> Option<String>>(
    layers: &Layers<E>,
    args: &ServeArgs,
    store: &StoreConfig,
) -> Result<BlobSettings> {
    let text =
        |flag: &Option<String>, variable: &str, from_file: fn(&FileConfig) -> Option<String>| {
            layers
                .pick(flag.clone(), variable, from_file)
                .filter(|raw| !raw.value.trim().is_empty())
        };
    let bucket = text(&args.s3_bucket, "MERIDIAN_S3_BUCKET", |f| {
        f.s3_bucket.clone()
    });
    let Some(bucket) = bucket else {
        let dir = text(&args.blob_dir, "MERIDIAN_BLOB_DIR", |f| {
            f.blob_dir.as_ref().map(|d| d.display().to_string())
        });
        return Ok(BlobSettings::Files(match dir {
            Some(raw) => PathBuf::from(raw.value),
            None => store.data.join("blobs"),
        }));
    };
    let endpoint = text(&args.s3_endpoint, "MERIDIAN_S3_ENDPOINT", |f| {
        f.s3_endpoint.clone()
    })
    .with_context(|| format!("{}: an S3 bucket needs s3_endpoint too", bucket.source))?;
    if !(endpoint.value.starts_with("http://") || endpoint.value.starts_with("https://")) {
        bail!(
            "{}: '{}' is not an http(s) URL",
            endpoint.source,
            endpoint.value
        );
    }
    let region = text(&None, "MERIDIAN_S3_REGION", |f| f.s3_region.clone())
        .map_or_else(|| "us-east-1".to_owned(), |raw| raw.value);
    let prefix = text(&None, "MERIDIAN_S3_PREFIX", |f| f.s3_prefix.clone())
        .map(|raw| raw.value.trim_matches('/').to_owned())
        .filter(|p| !p.is_empty());
    let secret = |variable: &str| {
        (layers.env)(variable).with_context(|| {
            format!(
                "the S3 bucket '{}' needs {variable} in the environment",
                bucket.value
            )
        })
    };
    let access_key_id = secret("MERIDIAN_S3_ACCESS_KEY_ID")?;
    let secret_access_key = secret("MERIDIAN_S3_SECRET_ACCESS_KEY")?;
    Ok(BlobSettings::S3(blob_s3::S3Config {
        endpoint: endpoint.value,
        bucket: bucket.value,
        region,
        access_key_id,
        secret_access_key,
        prefix,
    }))
}

/// The connection limits, each checked.
fn connection_settings<E: Fn(&str) -> Option<String>>(
    layers: &Layers<E>,
    args: &ServeArgs,
) -> Result<ConnectionSettings> {
    let seconds = |flag: &Option<String>,
                   variable: &str,
                   from_file: fn(&FileConfig) -> Option<Seconds>|
     -> Result<Duration> {
        let raw = layers
            .pick(flag.clone(), variable, |f| {
                from_file(f).map(|s| s.to_string())
            })
            .with_context(|| format!("no value for {variable}"))?;
        match raw.value.trim().parse::<f64>() {
            Ok(n) if n > 0.0 && n <= TIMEOUT_CEILING => Ok(Duration::from_secs_f64(n)),
            _ => bail!(
                "{}: '{}' is not a positive number of seconds (at most {TIMEOUT_CEILING})",
                raw.source,
                raw.value
            ),
        }
    };
    let count = |flag: &Option<String>,
                 variable: &str,
                 from_file: fn(&FileConfig) -> Option<u64>,
                 least: u64,
                 what: &str|
     -> Result<Option<u64>> {
        let Some(raw) = layers
            .pick(flag.clone(), variable, |f| {
                from_file(f).map(|n| n.to_string())
            })
            .filter(|raw| !raw.value.is_empty())
        else {
            return Ok(None);
        };
        match raw.value.trim().parse::<u64>() {
            Ok(n) if n >= least => Ok(Some(n)),
            _ => bail!(
                "{}: '{}' is not a number of {what} of at least {least}",
                raw.source,
                raw.value
            ),
        }
    };
    let header_read_timeout = seconds(
        &args.header_read_timeout,
        "MERIDIAN_HEADER_READ_TIMEOUT",
        |f| f.header_read_timeout,
    )?;
    let body_read_timeout = seconds(&args.body_read_timeout, "MERIDIAN_BODY_READ_TIMEOUT", |f| {
        f.body_read_timeout
    })?;
    let keep_alive_timeout = seconds(
        &args.keep_alive_timeout,
        "MERIDIAN_KEEP_ALIVE_TIMEOUT",
        |f| f.keep_alive_timeout,
    )?;
    let send_timeout = seconds(&args.send_timeout, "MERIDIAN_SEND_TIMEOUT", |f| {
        f.send_timeout
    })?;
    let body_min_rate = count(
        &args.body_min_rate,
        "MERIDIAN_BODY_MIN_RATE",
        |f| f.body_min_rate,
        0,
        "bytes a second",
    )?
    .context("no body_min_rate")?;
    let max_requests_per_connection = count(
        &args.max_requests_per_connection,
        "MERIDIAN_MAX_REQUESTS_PER_CONNECTION",
        |f| f.max_requests_per_connection,
        1,
        "requests",
    )?
    .context("no max_requests_per_connection")?;
    let max_connections = match count(
        &args.max_connections,
        "MERIDIAN_MAX_CONNECTIONS",
        |f| f.max_connections,
        1,
        "connections",
    )? {
        Some(n) if n > MAX_CONNECTIONS_CEILING => {
            bail!("max_connections {n} is over {MAX_CONNECTIONS_CEILING}: memory runs out first")
        }
        other => other.map(|n| n as usize),
    };
    let max_concurrent_reads = count(
        &args.max_concurrent_reads,
        "MERIDIAN_MAX_CONCURRENT_READS",
        |f| f.max_concurrent_reads,
        1,
        "reads",
    )?
    .map(|n| n as usize);
    let max_concurrent_writes = count(
        &args.max_concurrent_writes,
        "MERIDIAN_MAX_CONCURRENT_WRITES",
        |f| f.max_concurrent_writes,
        1,
        "writes",
    )?
    .map(|n| n as usize);
    Ok(ConnectionSettings {
        max_concurrent_reads,
        max_concurrent_writes,
        header_read_timeout,
        body_read_timeout,
        body_min_rate,
        keep_alive_timeout,
        send_timeout,
        max_requests_per_connection,
        max_connections,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |key| map.get(key).cloned()
    }

    #[test]
    fn the_built_in_defaults_parse_and_are_what_the_readme_says() {
        let config = ServeConfig::resolve(&ServeArgs::default(), env_of(&[])).unwrap();
        assert_eq!(config.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.store.data, PathBuf::from("./meridian-data"));
        assert_eq!(config.store.database_url, None);
        assert_eq!(
            config.store.sqlite_durability,
            store_sqlite::Durability::Full
        );
        assert_eq!(config.max_body_bytes, 16 * 1024 * 1024);
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(config.health_code_validity, 300);
        assert_eq!(config.health_code_key_rotation_days, 30);
        assert_eq!(config.identity_population, 1_000_000);
        assert_eq!(config.identity_model_interval, 30);
        assert_eq!(config.identity_model_growth, 10);
        assert_eq!(config.public_base, None);
        assert_eq!(config.allowed_hosts, []);
        assert_eq!(
            config.connections,
            ConnectionSettings {
                header_read_timeout: Duration::from_secs(10),
                body_read_timeout: Duration::from_secs(30),
                body_min_rate: 1024,
                keep_alive_timeout: Duration::from_secs(60),
                send_timeout: Duration::from_secs(60),
                max_requests_per_connection: 1000,
                max_connections: None,
                max_concurrent_reads: None,
                max_concurrent_writes: None,
            }
        );
    }

    #[test]
    fn the_embedded_stores_durability_is_full_unless_normal_is_asked_and_never_on_postgres() {
        let store =
            |args: StoreArgs, env: &[(&str, &str)]| StoreConfig::resolve(&args, env_of(env));
        let normal = store(
            StoreArgs {
                sqlite_synchronous: Some("normal".into()),
                ..StoreArgs::default()
            },
            &[],
        )
        .unwrap();
        assert_eq!(normal.sqlite_durability, store_sqlite::Durability::Normal);
        let from_env = store(
            StoreArgs::default(),
            &[("MERIDIAN_SQLITE_SYNCHRONOUS", "normal")],
        );
        assert_eq!(
            from_env.unwrap().sqlite_durability,
            store_sqlite::Durability::Normal
        );

        let error = store(
            StoreArgs::default(),
            &[("MERIDIAN_SQLITE_SYNCHRONOUS", "off")],
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("MERIDIAN_SQLITE_SYNCHRONOUS: sqlite_synchronous 'off' is neither"),
            "{error}"
        );
        let error = store(
            StoreArgs {
                database_url: Some("postgres://postgres@127.0.0.1/x".into()),
                sqlite_synchronous: Some("normal".into()),
                ..StoreArgs::default()
            },
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains(
                "flag --sqlite-synchronous: sqlite_synchronous normal applies to the embedded"
            ),
            "{error}"
        );
        // The default (full) stands beside PostgreSQL.
        let postgres = store(
            StoreArgs {
                database_url: Some("postgres://postgres@127.0.0.1/x".into()),
                ..StoreArgs::default()
            },
            &[],
        );
        assert_eq!(
            postgres.unwrap().sqlite_durability,
            store_sqlite::Durability::Full
        );
    }

    #[test]
    fn connection_limits_come_from_any_layer_and_each_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("meridian.toml");
        std::fs::write(
            &file,
            "header_read_timeout = 0.25\nkeep_alive_timeout = 5\nmax_connections = 500\n\
             body_min_rate = 0\nmax_concurrent_writes = 3\n",
        )
        .unwrap();
        let args = ServeArgs {
            store: StoreArgs {
                config: Some(file),
                ..StoreArgs::default()
            },
            max_requests_per_connection: Some("7".into()),
            ..ServeArgs::default()
        };
        let env = env_of(&[
            ("MERIDIAN_BODY_READ_TIMEOUT", "2.5"),
            ("MERIDIAN_SEND_TIMEOUT", "90"),
            ("MERIDIAN_MAX_CONCURRENT_READS", "12"),
        ]);
        let connections = ServeConfig::resolve(&args, env).unwrap().connections;
        assert_eq!(connections.header_read_timeout, Duration::from_millis(250));
        assert_eq!(connections.keep_alive_timeout, Duration::from_secs(5));
        assert_eq!(connections.body_read_timeout, Duration::from_millis(2500));
        assert_eq!(connections.send_timeout, Duration::from_secs(90));
        assert_eq!(connections.body_min_rate, 0);
        assert_eq!(connections.max_requests_per_connection, 7);
        assert_eq!(connections.max_connections, Some(500));
        assert_eq!(connections.max_concurrent_reads, Some(12));
        assert_eq!(connections.max_concurrent_writes, Some(3));

        for (variable, value, message) in [
            (
                "MERIDIAN_HEADER_READ_TIMEOUT",
                "0",
                "'0' is not a positive number of seconds (at most 86400)",
            ),
            (
                "MERIDIAN_KEEP_ALIVE_TIMEOUT",
                "soon",
                "'soon' is not a positive number of seconds (at most 86400)",
            ),
            (
                "MERIDIAN_BODY_READ_TIMEOUT",
                "-1",
                "'-1' is not a positive number of seconds (at most 86400)",
            ),
            (
                "MERIDIAN_MAX_CONNECTIONS",
                "0",
                "'0' is not a number of connections of at least 1",
            ),
            (
                "MERIDIAN_MAX_REQUESTS_PER_CONNECTION",
                "0",
                "'0' is not a number of requests of at least 1",
            ),
            (
                "MERIDIAN_BODY_MIN_RATE",
                "fast",
                "'fast' is not a number of bytes a second of at least 0",
            ),
        ] {
            let error = ServeConfig::resolve(&ServeArgs::default(), env_of(&[(variable, value)]))
                .unwrap_err()
                .to_string();
            assert_eq!(error, format!("environment variable {variable}: {message}"));
        }
    }

    #[test]
    fn the_identity_model_schedule_can_be_turned_off_but_not_given_a_zero_growth() {
        let config = ServeConfig::resolve(
            &ServeArgs::default(),
            env_of(&[("MERIDIAN_IDENTITY_MODEL_INTERVAL", "0")]),
        )
        .unwrap();
        assert_eq!(config.identity_model_interval, 0);
        let error = ServeConfig::resolve(
            &ServeArgs::default(),
            env_of(&[("MERIDIAN_IDENTITY_MODEL_GROWTH", "0")]),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            error,
            "environment variable MERIDIAN_IDENTITY_MODEL_GROWTH: '0' is not a percentage from 1 to 1000"
        );
    }

    #[test]
    fn a_health_code_validity_of_zero_stops_start_up() {
        let error = ServeConfig::resolve(
            &ServeArgs::default(),
            env_of(&[("MERIDIAN_HEALTH_CODE_VALIDITY", "0")]),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            error,
            "environment variable MERIDIAN_HEALTH_CODE_VALIDITY: '0' is not a positive number of seconds"
        );
    }

    #[test]
    fn flags_beat_the_environment_which_beats_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("meridian.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:1000\"\ndata = \"/from/file\"\nmax_body_bytes = 10\n",
        )
        .unwrap();
        let args = ServeArgs {
            store: StoreArgs {
                config: Some(file),
                ..StoreArgs::default()
            },
            listen: Some("127.0.0.1:3000".into()),
            ..ServeArgs::default()
        };
        let env = env_of(&[
            ("MERIDIAN_LISTEN", "127.0.0.1:2000"),
            ("MERIDIAN_DATA", "/from/env"),
        ]);
        let config = ServeConfig::resolve(&args, env).unwrap();
        assert_eq!(
            config.listen,
            "127.0.0.1:3000".parse().unwrap(),
            "the flag wins"
        );
        assert_eq!(
            config.store.data,
            PathBuf::from("/from/env"),
            "the environment beats the file"
        );
        assert_eq!(config.max_body_bytes, 10, "the file beats the defaults");
    }

    #[test]
    fn an_invalid_value_stops_start_up_and_says_where_it_came_from() {
        let error = ServeConfig::resolve(
            &ServeArgs::default(),
            env_of(&[("MERIDIAN_LISTEN", "localhost")]),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            error,
            "environment variable MERIDIAN_LISTEN: 'localhost' is not an address such as 127.0.0.1:8080"
        );
        let args = StoreArgs {
            database_url: Some("mysql://x".into()),
            ..StoreArgs::default()
        };
        let error = StoreConfig::resolve(&args, env_of(&[]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "flag --database-url: 'mysql://x' is not a postgres:// URL"
        );
        let error = ServeConfig::resolve(
            &ServeArgs::default(),
            env_of(&[("MERIDIAN_MAX_BODY_BYTES", "0")]),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            error,
            "environment variable MERIDIAN_MAX_BODY_BYTES: '0' is not a positive number of bytes"
        );
    }

    #[test]
    fn allowed_hosts_come_from_any_layer_and_each_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("meridian.toml");
        std::fs::write(
            &file,
            "allowed_hosts = [\"hie.example.org\", \"10.0.0.5:8080\"]\n",
        )
        .unwrap();
        let from_file = ServeArgs {
            store: StoreArgs {
                config: Some(file),
                ..StoreArgs::default()
            },
            ..ServeArgs::default()
        };
        let config = ServeConfig::resolve(&from_file, env_of(&[])).unwrap();
        let hosts: Vec<String> = config.allowed_hosts.iter().map(|h| h.to_string()).collect();
        assert_eq!(hosts, ["hie.example.org", "10.0.0.5:8080"]);

        let config = ServeConfig::resolve(
            &from_file,
            env_of(&[("MERIDIAN_ALLOWED_HOSTS", "A.example, b.example:81")]),
        )
        .unwrap();
        let hosts: Vec<String> = config.allowed_hosts.iter().map(|h| h.to_string()).collect();
        assert_eq!(hosts, ["a.example", "b.example:81"], "the environment wins");

        let error = ServeConfig::resolve(
            &ServeArgs {
                allowed_hosts: Some("hie.example.org,https://x.example".into()),
                ..ServeArgs::default()
            },
            env_of(&[]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with("flag --allowed-hosts: 'https://x.example' is not a host name"),
            "{error}"
        );
    }

    #[test]
    fn unknown_keys_in_a_config_file_are_errors_not_silently_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("meridian.toml");
        std::fs::write(&file, "lisen = \"127.0.0.1:1000\"\n").unwrap();
        let args = StoreArgs {
            config: Some(file),
            ..StoreArgs::default()
        };
        let error = format!(
            "{:#}",
            StoreConfig::resolve(&args, env_of(&[])).unwrap_err()
        );
        assert!(error.contains("unknown field `lisen`"), "{error}");
    }
}

#[cfg(test)]
mod blob_tests {
    use std::collections::HashMap;

    use super::*;

    fn resolve(args: ServeArgs, pairs: &[(&str, &str)]) -> Result<ServeConfig> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ServeConfig::resolve(&args, move |key| env.get(key).cloned())
    }

    #[test]
    fn large_files_go_to_a_directory_unless_a_bucket_is_set_with_its_endpoint_and_credentials() {
        let config = resolve(ServeArgs::default(), &[]).unwrap();
        assert_eq!(
            config.blobs,
            BlobSettings::Files(PathBuf::from("./meridian-data/blobs"))
        );
        assert_eq!(config.job_workers, 2);

        let args = || ServeArgs {
            s3_bucket: Some("meridian".into()),
            s3_endpoint: Some("http://127.0.0.1:9000".into()),
            job_workers: Some("0".into()),
            ..ServeArgs::default()
        };
        let error = resolve(args(), &[]).unwrap_err().to_string();
        assert!(error.contains("MERIDIAN_S3_ACCESS_KEY_ID"), "{error}");
        let config = resolve(
            args(),
            &[
                ("MERIDIAN_S3_ACCESS_KEY_ID", "id"),
                ("MERIDIAN_S3_SECRET_ACCESS_KEY", "secret"),
                ("MERIDIAN_S3_PREFIX", "/region/blobs/"),
            ],
        )
        .unwrap();
        assert_eq!(config.job_workers, 0);
        let BlobSettings::S3(s3) = &config.blobs else {
            panic!("{:?}", config.blobs)
        };
        assert_eq!(
            (s3.bucket.as_str(), s3.endpoint.as_str(), s3.region.as_str()),
            ("meridian", "http://127.0.0.1:9000", "us-east-1")
        );
        assert_eq!(s3.prefix.as_deref(), Some("region/blobs"));
        assert!(
            !format!("{config:?}").contains("secret\""),
            "the secret stays out of logs"
        );

        let no_endpoint = ServeArgs {
            s3_bucket: Some("meridian".into()),
            ..ServeArgs::default()
        };
        let error = resolve(no_endpoint, &[]).unwrap_err().to_string();
        assert!(error.contains("s3_endpoint"), "{error}");
        let many = ServeArgs {
            job_workers: Some("1000".into()),
            ..ServeArgs::default()
        };
        assert!(
            resolve(many, &[])
                .unwrap_err()
                .to_string()
                .contains("0 to 64")
        );
    }
}
