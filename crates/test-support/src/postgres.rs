//! Fresh PostgreSQL databases for tests: one new database per test on the server that
//! `MERIDIAN_TEST_DATABASE_URL` names, dropped when the test ends. An unreachable server fails
//! the test with instructions rather than skipping it: a skipped storage test proves nothing.
//! The server may be a Citus coordinator: each test database is then made on every node of its
//! cluster, and the store distributes its tables there.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use postgres::NoTls;
use store::Store;
use store_postgres::{PostgresConfig, PostgresStore};

use crate::TestStore;

/// Where the tests find PostgreSQL unless `MERIDIAN_TEST_DATABASE_URL` says otherwise.
pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The server the tests use (an administrative database on it, where test databases are
/// created and dropped).
pub fn server_url() -> String {
    std::env::var("MERIDIAN_TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| DEFAULT_TEST_DATABASE_URL.to_owned())
}

/// An empty database that exists until this value is dropped.
pub struct TestDatabase {
    /// The URL of the new database.
    pub url: String,
    name: String,
    server_url: String,
}

impl TestDatabase {
    /// Creates an empty database with a name no other test uses.
    pub fn create() -> TestDatabase {
        TestDatabase::create_on(&server_url())
    }

    /// The same on the server at `server_url` (an administrative database on it).
    pub fn create_on(server_url: &str) -> TestDatabase {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let server_url = server_url.to_owned();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "meridian_test_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = connect_admin(&server_url);
        let url = with_database(&server_url, &name);
        if is_citus(&mut admin) {
            citus::create(&mut admin, &url, &name);
        } else {
            // template0 and an explicit encoding: the server's default template may carry
            // another encoding or leftovers, and the store needs UTF8.
            admin
                .batch_execute(&format!(
                    "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8'"
                ))
                .unwrap_or_else(|e| panic!("creating test database {name}: {e}"));
        }
        TestDatabase {
            url,
            name,
            server_url,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A connection to this database outside any store (to inspect rows, or end sessions).
    pub fn connect(&self) -> postgres::Client {
        connect_admin(&self.url)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let result = postgres::Client::connect(&self.server_url, NoTls).and_then(|mut admin| {
            if is_citus(&mut admin) {
                citus::drop(&mut admin, &self.server_url, &self.name)
            } else {
                drop_database(&mut admin, &self.name)
            }
        });
        if let Err(error) = result {
            eprintln!("could not drop test database {}: {error}", self.name);
        }
    }
}

/// Drops database `name` on the server of `admin`, ending the sessions a test left open (a
/// leaked pool, a thread still running): FORCE does that too, but says less when it fails. A
/// session that comes back in between (a background worker of an extension reconnecting) makes
/// the drop fail with `object_in_use`: it is tried again.
fn drop_database(admin: &mut postgres::Client, name: &str) -> Result<(), postgres::Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&name],
        )?;
        match admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")) {
            Err(error) if is_object_in_use(&error) && attempt < 20 => {
                std::thread::sleep(std::time::Duration::from_millis(100 * attempt));
            }
            result => return result,
        }
    }
}

fn is_object_in_use(error: &postgres::Error) -> bool {
    error.code() == Some(&postgres::error::SqlState::OBJECT_IN_USE)
}

/// Whether the server is a Citus coordinator (the extension is in its administrative database).
fn is_citus(admin: &mut postgres::Client) -> bool {
    admin
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')",
            &[],
        )
        .is_ok_and(|row| row.get(0))
}

/// Test databases on a Citus cluster (`MERIDIAN_TEST_DATABASE_URL` naming its coordinator, as
/// `../shared/citus/cluster.sh start` prints it): Citus keeps its metadata per database, so a
/// new database gets the extension on every node and the coordinator's node list.
mod citus {
    use postgres::NoTls;

    /// Creates database `name` (at `url`) on every node of the coordinator `admin`'s cluster.
    pub(super) fn create(admin: &mut postgres::Client, url: &str, name: &str) {
        let nodes: Vec<(String, i32, i32)> = admin
            .query(
                "SELECT nodename::text, nodeport, groupid FROM pg_dist_node \
                 WHERE noderole = 'primary' ORDER BY groupid",
                &[],
            )
            .unwrap_or_else(|e| panic!("reading the Citus cluster's nodes: {e}"))
            .iter()
            .map(|row| (row.get(0), row.get(1), row.get(2)))
            .collect();
        // Propagated to the workers; Citus creates them from template1 only. One statement
        // at a time: CREATE DATABASE cannot run in the implicit transaction of a batch.
        for statement in [
            "SET citus.enable_create_database_propagation = on".to_owned(),
            format!("CREATE DATABASE {name} ENCODING 'UTF8'"),
            format!("ALTER DATABASE {name} SET citus.shard_count = 4"),
        ] {
            admin.batch_execute(&statement).unwrap_or_else(|e| {
                panic!(
                    "creating test database {name} on the Citus cluster ({statement}): {e}: {:?}",
                    e.as_db_error().map(|db| db.message())
                )
            });
        }
        let config: postgres::Config = url.parse().expect("a test database URL");
        for (host, port, _) in &nodes {
            node_config(&config, host, *port, name)
                .connect(NoTls)
                .and_then(|mut client| client.batch_execute("CREATE EXTENSION IF NOT EXISTS citus"))
                .unwrap_or_else(|e| {
                    panic!(
                        "creating the citus extension in {name} on {host}:{port}: {e}: {:?}",
                        e.as_db_error().map(|db| db.message())
                    )
                });
        }
        // Adding a node syncs the new database's metadata to it over a connection Citus
        // marks essential; right after the database was made there, that connection is at
        // times refused ("failure on connection marked as essential", the cause only in a
        // notice). Tried again a few times, with the notices kept for the message.
        let notices = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let mut coordinator_config = config.clone();
        let sink = notices.clone();
        coordinator_config.notice_callback(move |notice| {
            sink.lock().expect("the notice list").push(format!(
                "{}: {}",
                notice.severity(),
                notice.message()
            ));
        });
        let mut coordinator = coordinator_config
            .connect(NoTls)
            .unwrap_or_else(|e| panic!("connecting to {name}: {e}"));
        for (host, port, group) in &nodes {
            let add = if *group == 0 {
                "SELECT citus_set_coordinator_host($1, $2)"
            } else {
                "SELECT citus_add_node($1, $2)"
            };
            let mut attempt = 0;
            while let Err(e) = coordinator.execute(add, &[host, port]) {
                attempt += 1;
                if attempt == ADD_NODE_ATTEMPTS {
                    panic!(
                        "adding node {host}:{port} to {name} ({attempt} attempts): {e}: {:?}; notices: {:?}",
                        e.as_db_error().map(|db| db.message()),
                        notices.lock().expect("the notice list")
                    );
                }
                eprintln!("adding node {host}:{port} to {name} failed ({e}); trying again");
                std::thread::sleep(std::time::Duration::from_millis(250 * attempt));
            }
        }
    }

    /// A connection to database `dbname` on the node at `host:port`, as the user of `config`.
    fn node_config(
        config: &postgres::Config,
        host: &str,
        port: i32,
        dbname: &str,
    ) -> postgres::Config {
        let mut node = postgres::Config::new();
        node.host(host)
            .port(u16::try_from(port).expect("a port"))
            .dbname(dbname)
            .user(config.get_user().unwrap_or("postgres"));
        if let Some(password) = config.get_password() {
            node.password(password);
        }
        node
    }

    /// How many times adding a node to a new database is tried.
    const ADD_NODE_ATTEMPTS: u64 = 5;

    /// Drops database `name` on every node of the coordinator `admin`'s cluster (at
    /// `server_url`), node by node: the coordinator first (whose pooled sessions reach into
    /// the workers' copies), then each worker. Each drop is the node's own (propagation off;
    /// Citus still forgets the database it made), and is tried again there: a single
    /// propagated drop fails on a worker where a session came back after FORCE ended it, and
    /// cannot be repeated, since the workers it reached no longer have the database.
    pub(super) fn drop(
        admin: &mut postgres::Client,
        server_url: &str,
        name: &str,
    ) -> Result<(), postgres::Error> {
        let workers: Vec<(String, i32)> = admin
            .query(
                "SELECT nodename::text, nodeport FROM pg_dist_node \
                 WHERE noderole = 'primary' AND groupid <> 0 ORDER BY groupid",
                &[],
            )?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        admin.batch_execute("SET citus.enable_create_database_propagation = off")?;
        super::drop_database(admin, name)?;
        let config: postgres::Config = server_url.parse()?;
        let admin_database = config.get_dbname().unwrap_or("postgres");
        for (host, port) in &workers {
            let mut worker = node_config(&config, host, *port, admin_database).connect(NoTls)?;
            super::drop_database(&mut worker, name)?;
        }
        Ok(())
    }
}

fn connect_admin(url: &str) -> postgres::Client {
    postgres::Client::connect(url, NoTls).unwrap_or_else(|error| {
        // The driver's message is generic ("error connecting to server"); the cause is below.
        let mut reason = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            reason.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        panic!(
            "PostgreSQL is not reachable at {url}: {reason}\n\
             The storage tests run against a real PostgreSQL. Start the local one with\n    \
             pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n\
             or point MERIDIAN_TEST_DATABASE_URL at a server where this user may create databases."
        )
    })
}

/// `url` with its database replaced by `name`, in URL or key=value form.
fn with_database(url: &str, name: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let after_scheme = scheme_end + 3;
        let rest = &url[after_scheme..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let query = tail.find('?').map_or("", |q| &tail[q..]);
        format!("{}{authority}/{name}{query}", &url[..after_scheme])
    } else {
        format!("{url} dbname={name}")
    }
}

/// A fresh PostgreSQL store on a database of its own, dropped with it.
pub fn postgres() -> TestStore {
    postgres_on(&server_url())
}

/// The same on the server at `server_url` (a Citus coordinator: `crate::citus`).
pub fn postgres_on(server_url: &str) -> TestStore {
    let database = TestDatabase::create_on(server_url);
    let (url, name) = (database.url.clone(), database.name.clone());
    let open = move || -> Arc<dyn Store> {
        let mut config = PostgresConfig::new(url.clone());
        // Tests run in parallel on a server with 100 connections: keep each store's share small.
        config.max_connections = 8;
        let store = PostgresStore::open(config)
            .unwrap_or_else(|e| panic!("opening a PostgreSQL store on test database {name}: {e}"));
        Arc::new(store)
    };
    TestStore {
        store: open(),
        reopen: Box::new(open),
        _cleanup: Box::new(database),
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_of_a_url_is_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgresql://u:p@h/db?sslmode=disable", "t1"),
            "postgresql://u:p@h/t1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "t1"), "postgres://h/t1");
        assert_eq!(
            with_database("host=/tmp user=postgres", "t1"),
            "host=/tmp user=postgres dbname=t1"
        );
    }
}
