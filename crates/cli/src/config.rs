//! Configuration: built-in defaults < a config file < `MERIDIAN_*` environment variables <
//! command-line flags. Raw values are gathered first, then checked once: an invalid value stops
//! start-up with a message that names where it came from.

use std::net::SocketAddr;
use std::path::PathBuf;

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
    /// Log filter, e.g. `info` or `meridian=debug` [default: info].
    #[arg(long, value_name = "FILTER")]
    pub log: Option<String>,
    /// Log format: text or json [default: text].
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Seconds a phone health code stays valid [default: 300].
    #[arg(long, value_name = "SECONDS")]
    pub health_code_validity: Option<String>,
}

/// The keys of a config file, all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data: Option<PathBuf>,
    database_url: Option<String>,
    max_body_bytes: Option<u64>,
    public_base: Option<String>,
    log: Option<String>,
    log_format: Option<String>,
    health_code_validity: Option<u64>,
    health_code_key_rotation_days: Option<u64>,
    identity_population: Option<u64>,
    identity_model_interval: Option<u64>,
    identity_model_growth: Option<u64>,
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
}

/// The checked configuration of `meridian serve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    pub store: StoreConfig,
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    pub public_base: Option<String>,
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
}

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
        Ok(StoreConfig {
            data: PathBuf::from(data.value),
            database_url: database_url.map(|r| r.value),
        })
    }
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

        Ok(ServeConfig {
            identity_model_interval,
            identity_model_growth,
            health_code_validity,
            health_code_key_rotation_days,
            identity_population,
            store,
            listen,
            max_body_bytes,
            public_base: public_base.map(|r| r.value.trim_end_matches('/').to_owned()),
            log: log.value,
            log_format,
        })
    }
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
        assert_eq!(config.max_body_bytes, 16 * 1024 * 1024);
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(config.health_code_validity, 300);
        assert_eq!(config.health_code_key_rotation_days, 30);
        assert_eq!(config.identity_population, 1_000_000);
        assert_eq!(config.identity_model_interval, 30);
        assert_eq!(config.identity_model_growth, 10);
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
