//! The schema the migrations arrive at is the one `store_sql::tables` declares: a database
//! migrated from nothing and one created from the declaration's text are alike in every fact
//! PostgreSQL's catalog holds about them.

use store_sql::Dialect;
use store_sql::ddl::create_schema;
use test_support::TestDatabase;

use crate::support::open;

/// What the catalog says of a database's schema (`public`), one line per fact: each column in
/// its table's order (type, not null, collation, identity, compression, default), each index's
/// definition, each constraint and each sequence. The migrations' own bookkeeping
/// (`schema_version`) is left out.
fn catalog(client: &mut postgres::Client) -> Vec<String> {
    let mut facts = Vec::new();
    let queries = [
        "SELECT format('column %s.%s %s not_null=%s collation=%s identity=%s compression=%s default=%s', \
         c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, \
         coalesce(co.collname, '-'), a.attidentity, a.attcompression, \
         coalesce(pg_get_expr(d.adbin, d.adrelid), '-')) \
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_collation co ON co.oid = a.attcollation \
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
         WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped \
         AND c.relname <> 'schema_version' ORDER BY c.relname, a.attnum",
        "SELECT format('index %s: %s', indexname, indexdef) FROM pg_indexes \
         WHERE schemaname = 'public' AND tablename <> 'schema_version' ORDER BY indexname",
        "SELECT format('constraint %s.%s: %s', conrelid::regclass, conname, pg_get_constraintdef(oid)) \
         FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1",
        "SELECT format('sequence %s %s increment=%s start=%s', sequencename, data_type, increment_by, start_value) \
         FROM pg_sequences WHERE schemaname = 'public' ORDER BY sequencename",
    ];
    for query in queries {
        for row in client.query(query, &[]).unwrap() {
            facts.push(row.get(0));
        }
    }
    facts
}

fn declared() -> (TestDatabase, Vec<String>) {
    let database = TestDatabase::create();
    let mut client = database.connect();
    client
        .batch_execute(&create_schema(Dialect::Postgres).join(";\n"))
        .unwrap();
    let facts = catalog(&mut client);
    (database, facts)
}

#[test]
fn a_database_migrated_from_nothing_has_the_declared_schema() {
    let migrated = TestDatabase::create();
    drop(open(&migrated, 1));
    let described = catalog(&mut migrated.connect());
    let (_declared_database, declared) = declared();
    assert_eq!(described, declared);
    // The description reaches what the declaration says: types and collations, compression,
    // identity, partial indexes, keys and the row-key sequence.
    for fact in [
        "column idx_string.normalized text not_null=t collation=C identity= compression= default=-",
        "column version.content bytea not_null=f collation=- identity= compression=l default=-",
        "column version.seq bigint not_null=t collation=- identity=a compression= default=-",
        "index idx_string_rid: CREATE INDEX idx_string_rid ON public.idx_string USING btree (rid, param, normalized)",
        "index resource_patient_key: CREATE INDEX resource_patient_key ON public.resource USING btree (patient_key, rid) WHERE (patient_key <> 0)",
        "constraint resource.resource_pkey: PRIMARY KEY (rid)",
        "sequence resource_rid bigint increment=1024 start=1",
    ] {
        assert!(
            described.iter().any(|f| f == fact),
            "{fact}: {described:#?}"
        );
    }
}

/// The comparison sees an index's columns: `idx_string_rid` as migration 3 left it, before
/// migration 4 added `normalized`, is not the declared schema.
#[test]
fn a_database_short_of_the_last_migration_is_not_the_declared_schema() {
    let migrated = TestDatabase::create();
    drop(open(&migrated, 1));
    let mut client = migrated.connect();
    client
        .batch_execute(
            "DROP INDEX idx_string_rid; CREATE INDEX idx_string_rid ON idx_string (rid, param)",
        )
        .unwrap();
    let (_declared_database, declared) = declared();
    assert_ne!(catalog(&mut client), declared);
}
