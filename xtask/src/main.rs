//! Maintainer tasks. `cargo run -p xtask -- vendor-definitions SPEC_DIR MEDPLUM_DIR` rewrites the
//! compact FHIR R4 definitions in `crates/fhir-model/definitions/` from the official files.
//!
//! SPEC_DIR is `spec-examples-json/` from `fhir-r4-spec-json.tar.xz` (pristine HL7 R4 4.0.1 files);
//! MEDPLUM_DIR is `definitions-medplum/` from `fhir-r4-definitions-medplum.tar.xz`, used only for
//! the code systems the pristine snapshot lacks (`v2-tables`, `v3-codesystems`, `valuesets`).
//!
//! `cargo run -p xtask --release -- validate-corpus [--all] DIR...` validates every resource in
//! every JSON file under the directories (see `validate_corpus.rs`); `--all` lists every failure.

mod train_dictionary;
mod validate_corpus;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [cmd, spec, medplum] if cmd == "vendor-definitions" => {
            let out =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/fhir-model/definitions");
            vendor_definitions(Path::new(spec), Path::new(medplum), &out)
        }
        [cmd, out, inputs @ ..] if cmd == "train-dictionary" && !inputs.is_empty() => {
            let inputs: Vec<PathBuf> = inputs.iter().map(PathBuf::from).collect();
            train_dictionary::run(Path::new(out), &inputs)
        }
        [cmd, rest @ ..] if cmd == "validate-corpus" => {
            let list_all = rest.iter().any(|a| a == "--all");
            let dirs: Vec<PathBuf> = rest
                .iter()
                .filter(|a| *a != "--all")
                .map(PathBuf::from)
                .collect();
            if dirs.is_empty() {
                bail!("usage: cargo run -p xtask --release -- validate-corpus [--all] DIR...");
            }
            validate_corpus::run(&dirs, list_all)
        }
        _ => bail!(
            "usage: cargo run -p xtask -- vendor-definitions SPEC_DIR MEDPLUM_DIR\n       cargo run -p xtask --release -- validate-corpus [--all] DIR...\n       cargo run -p xtask --release -- train-dictionary OUT FILE|DIR..."
        ),
    }
}

fn read_json(path: &Path) -> Result<Value> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn last_segment(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

fn strip_version(url: &str) -> &str {
    url.split('|').next().unwrap_or(url)
}

fn bundle_resources(bundle: &Value) -> impl Iterator<Item = &Value> {
    bundle
        .get("entry")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("resource"))
}

fn vendor_definitions(spec: &Path, medplum: &Path, out: &Path) -> Result<()> {
    fs::create_dir_all(out)?;
    let mut files: Vec<PathBuf> = fs::read_dir(spec)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.sort();

    // Structure definitions: the datatypes bundle plus one pristine file per resource type.
    let mut structure_definitions = Vec::new();
    for sd in bundle_resources(&read_json(&spec.join("profiles-types.json"))?) {
        structure_definitions.push(sd.clone());
    }
    for path in &files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if !name.ends_with(".profile.json") {
            continue;
        }
        let sd = read_json(path)?;
        if str_of(&sd, "resourceType") == Some("StructureDefinition")
            && str_of(&sd, "kind") == Some("resource")
            && str_of(&sd, "derivation") != Some("constraint")
        {
            structure_definitions.push(sd);
        }
    }

    let mut types = Vec::new();
    let mut required_value_sets = BTreeSet::new();
    for sd in &structure_definitions {
        if str_of(sd, "derivation") == Some("constraint") {
            continue;
        }
        compact_structure_definition(sd, &mut types, &mut required_value_sets)?;
    }
    types.sort_by(|a, b| str_of(a, "name").cmp(&str_of(b, "name")));

    // Terminology: pristine single files first, then the bundles the snapshot lacks.
    let mut terminology = Terminology::default();
    for path in &files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with("valueset-") || name.starts_with("codesystem-") {
            terminology.add(read_json(path)?);
        }
    }
    for bundle in ["valuesets.json", "v3-codesystems.json", "v2-tables.json"] {
        for resource in bundle_resources(&read_json(&medplum.join(bundle))?) {
            terminology.add(resource.clone());
        }
    }
    let mut value_sets = Map::new();
    let mut unexpandable = Vec::new();
    for url in &required_value_sets {
        match terminology.expand(url, 0) {
            Some(codes) => {
                let mut by_system: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for (system, code) in codes {
                    by_system.entry(system).or_default().push(code);
                }
                value_sets.insert(url.clone(), json!(by_system));
            }
            None => unexpandable.push(url.clone()),
        }
    }

    let search_parameters =
        compact_search_parameters(&read_json(&spec.join("search-parameters.json"))?)?;

    let mut compartments = Map::new();
    for code in [
        "patient",
        "encounter",
        "relatedperson",
        "practitioner",
        "device",
    ] {
        let def = read_json(&spec.join(format!("compartmentdefinition-{code}.json")))?;
        let mut members = Map::new();
        for r in def
            .get("resource")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let (Some(t), Some(params)) = (str_of(r, "code"), r.get("param")) {
                members.insert(t.to_owned(), params.clone());
            }
        }
        compartments.insert(
            str_of(&def, "code").unwrap_or(code).to_owned(),
            Value::Object(members),
        );
    }

    write_lines(&out.join("types.json"), &types)?;
    write_lines(&out.join("search-parameters.json"), &search_parameters)?;
    let vs_lines: Vec<Value> = value_sets
        .into_iter()
        .map(|(url, codes)| json!({"url": url, "codes": codes}))
        .chain(
            unexpandable
                .iter()
                .map(|url| json!({"url": url, "unexpandable": true})),
        )
        .collect();
    write_lines(&out.join("value-sets.json"), &vs_lines)?;
    fs::write(
        out.join("compartments.json"),
        serde_json::to_string_pretty(&Value::Object(compartments))? + "\n",
    )?;
    eprintln!(
        "{} types, {} search parameters, {} required value sets ({} not expandable here)",
        types.len(),
        search_parameters.len(),
        vs_lines.len(),
        unexpandable.len()
    );
    Ok(())
}

/// A JSON array with one compact entry per line: small, and readable in a diff.
fn write_lines(path: &Path, items: &[Value]) -> Result<()> {
    let mut text = String::from("[\n");
    for (i, item) in items.iter().enumerate() {
        text.push_str(&serde_json::to_string(item)?);
        text.push_str(if i + 1 == items.len() { "\n" } else { ",\n" });
    }
    text.push_str("]\n");
    fs::write(path, text)?;
    Ok(())
}

/// Turns one StructureDefinition snapshot into compact type records: the type itself and one
/// record per backbone element (named by its path, e.g. `Observation.component`).
fn compact_structure_definition(
    sd: &Value,
    types: &mut Vec<Value>,
    required: &mut BTreeSet<String>,
) -> Result<()> {
    let name = str_of(sd, "type").context("StructureDefinition without type")?;
    let url = str_of(sd, "url").unwrap_or_default();
    let kind = str_of(sd, "kind").unwrap_or_default();
    let elements = sd
        .pointer("/snapshot/element")
        .and_then(Value::as_array)
        .with_context(|| format!("{name} has no snapshot"))?;

    // Which paths are backbone types: elements with children that are not the root.
    let paths: Vec<&str> = elements.iter().filter_map(|e| str_of(e, "path")).collect();
    let has_children = |path: &str| {
        let prefix = format!("{path}.");
        paths.iter().any(|p| p.starts_with(&prefix))
    };

    let mut records: Vec<(String, Map<String, Value>)> = Vec::new();
    let mut root = Map::new();
    root.insert("name".into(), json!(name));
    root.insert(
        "kind".into(),
        json!(match kind {
            "primitive-type" => "primitive",
            "complex-type" => "complex",
            "resource" => "resource",
            other => other,
        }),
    );
    if sd.get("abstract").and_then(Value::as_bool) == Some(true) {
        root.insert("abstract".into(), json!(true));
    }
    if let Some(base) = str_of(sd, "baseDefinition") {
        root.insert("base".into(), json!(last_segment(base)));
    }
    root.insert("elements".into(), json!([]));
    records.push((name.to_owned(), root));

    let mut constraints = Vec::new();
    for element in elements {
        let path = str_of(element, "path").context("element without path")?;
        for c in element
            .get("constraint")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let source = str_of(c, "source").unwrap_or(url);
            if source != url {
                continue;
            }
            let mut record = json!({
                "key": str_of(c, "key"),
                "severity": str_of(c, "severity"),
                "path": path,
                "human": str_of(c, "human"),
            });
            if let Some(expr) = str_of(c, "expression") {
                record["expression"] = json!(expr);
            }
            constraints.push(record);
        }
        if path == name {
            continue;
        }
        let (parent, last) = path
            .rsplit_once('.')
            .context("element path without parent")?;
        if kind == "primitive-type" && last == "value" {
            continue;
        }
        let (element_name, choice) = match last.strip_suffix("[x]") {
            Some(stem) => (stem, true),
            None => (last, false),
        };
        let mut record = Map::new();
        record.insert("name".into(), json!(element_name));
        if choice {
            record.insert("choice".into(), json!(true));
        }
        let min = element.get("min").and_then(Value::as_u64).unwrap_or(0);
        if min != 0 {
            record.insert("min".into(), json!(min));
        }
        match str_of(element, "max") {
            Some("*") => {
                record.insert("max".into(), Value::Null);
            }
            Some("1") | None => {}
            Some(n) => {
                record.insert("max".into(), json!(n.parse::<u64>().context("bad max")?));
            }
        }
        let mut element_types = Vec::new();
        if let Some(reference) = str_of(element, "contentReference") {
            element_types.push(json!({"code": reference.trim_start_matches('#')}));
        } else {
            for t in element
                .get("type")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let mut code = str_of(t, "code").unwrap_or_default().to_owned();
                if code.starts_with("http://hl7.org/fhirpath/System.") {
                    let fhir_type = t
                        .get("extension")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .find(|x| {
                            str_of(x, "url")
                                .is_some_and(|u| u.ends_with("structuredefinition-fhir-type"))
                        })
                        .and_then(|x| str_of(x, "valueUrl").or_else(|| str_of(x, "valueUri")));
                    code = match fhir_type {
                        Some(t) => t.to_owned(),
                        None => code
                            .trim_start_matches("http://hl7.org/fhirpath/")
                            .to_owned(),
                    };
                }
                if (code == "BackboneElement" || code == "Element") && has_children(path) {
                    code = path.to_owned();
                }
                let mut type_record = json!({"code": code});
                let targets: Vec<&str> = t
                    .get("targetProfile")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(last_segment)
                    .collect();
                if !targets.is_empty() {
                    type_record["targets"] = json!(targets);
                }
                element_types.push(type_record);
            }
        }
        record.insert("types".into(), Value::Array(element_types.clone()));
        if let Some(binding) = element.get("binding")
            && str_of(binding, "strength") == Some("required")
            && let Some(vs) = str_of(binding, "valueSet")
        {
            let vs = strip_version(vs);
            record.insert("binding".into(), json!(vs));
            required.insert(vs.to_owned());
        }
        if element.get("isSummary").and_then(Value::as_bool) == Some(true) {
            record.insert("summary".into(), json!(true));
        }
        if element.get("isModifier").and_then(Value::as_bool) == Some(true) {
            record.insert("modifier".into(), json!(true));
        }

        // A backbone element is both a member of its parent and a type of its own.
        if element_types.len() == 1 && element_types[0]["code"] == json!(path) {
            let mut backbone = Map::new();
            backbone.insert("name".into(), json!(path));
            backbone.insert("kind".into(), json!("backbone"));
            backbone.insert(
                "base".into(),
                json!(str_of(&element["type"][0], "code").unwrap_or("BackboneElement")),
            );
            backbone.insert("elements".into(), json!([]));
            records.push((path.to_owned(), backbone));
        }
        let owner = records
            .iter_mut()
            .find(|(n, _)| n == parent)
            .with_context(|| format!("{path}: parent {parent} not seen before"))?;
        owner.1["elements"]
            .as_array_mut()
            .expect("elements array")
            .push(Value::Object(record));
    }
    if !constraints.is_empty() {
        records[0]
            .1
            .insert("constraints".into(), Value::Array(constraints));
    }
    types.extend(records.into_iter().map(|(_, r)| Value::Object(r)));
    Ok(())
}

#[derive(Default)]
struct Terminology {
    value_sets: HashMap<String, Value>,
    code_systems: HashMap<String, Value>,
}

impl Terminology {
    fn add(&mut self, resource: Value) {
        let Some(url) = str_of(&resource, "url").map(str::to_owned) else {
            return;
        };
        let map = match str_of(&resource, "resourceType") {
            Some("ValueSet") => &mut self.value_sets,
            Some("CodeSystem") => &mut self.code_systems,
            _ => return,
        };
        map.entry(url).or_insert(resource);
    }

    /// All (system, code) pairs of a value set, or None where it draws on something not here
    /// (an external code system such as MIME types or currencies, or an unsupported filter).
    fn expand(&self, url: &str, depth: usize) -> Option<BTreeSet<(String, String)>> {
        if depth > 10 {
            return None;
        }
        let vs = self.value_sets.get(strip_version(url))?;
        if let Some(compose) = vs.get("compose") {
            let mut codes = BTreeSet::new();
            for include in compose
                .get("include")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                codes.extend(self.expand_include(include, depth)?);
            }
            for exclude in compose
                .get("exclude")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                for pair in self.expand_include(exclude, depth)? {
                    codes.remove(&pair);
                }
            }
            return Some(codes);
        }
        let contains = vs.pointer("/expansion/contains")?.as_array()?;
        let mut codes = BTreeSet::new();
        collect_expansion(contains, &mut codes);
        Some(codes)
    }

    fn expand_include(&self, include: &Value, depth: usize) -> Option<BTreeSet<(String, String)>> {
        let mut from_value_sets: Option<BTreeSet<(String, String)>> = None;
        for vs in include
            .get("valueSet")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let codes = self.expand(vs.as_str()?, depth + 1)?;
            from_value_sets = Some(match from_value_sets {
                None => codes,
                Some(acc) => acc.intersection(&codes).cloned().collect(),
            });
        }
        let Some(system) = str_of(include, "system") else {
            return from_value_sets;
        };
        let mut codes = BTreeSet::new();
        if let Some(concepts) = include.get("concept").and_then(Value::as_array) {
            for c in concepts {
                codes.insert((system.to_owned(), str_of(c, "code")?.to_owned()));
            }
        } else {
            let cs = self.code_systems.get(system)?;
            if str_of(cs, "content") != Some("complete") {
                return None;
            }
            let mut all = Vec::new();
            flatten_concepts(cs.get("concept")?.as_array()?, None, &mut all);
            let filters: Vec<&Value> = include
                .get("filter")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .collect();
            for (code, ancestors) in &all {
                let mut keep = true;
                for f in &filters {
                    let value = str_of(f, "value")?;
                    keep &= match (str_of(f, "property")?, str_of(f, "op")?) {
                        ("concept", "is-a") => {
                            code == value || ancestors.iter().any(|a| a == value)
                        }
                        ("concept", "descendent-of") => ancestors.iter().any(|a| a == value),
                        ("concept", "is-not-a") => {
                            code != value && !ancestors.iter().any(|a| a == value)
                        }
                        _ => return None,
                    };
                }
                if keep {
                    codes.insert((system.to_owned(), code.clone()));
                }
            }
        }
        Some(match from_value_sets {
            None => codes,
            Some(acc) => acc.intersection(&codes).cloned().collect(),
        })
    }
}

fn flatten_concepts(
    concepts: &[Value],
    parent: Option<&[String]>,
    out: &mut Vec<(String, Vec<String>)>,
) {
    for c in concepts {
        let Some(code) = str_of(c, "code") else {
            continue;
        };
        let ancestors: Vec<String> = parent.map(<[String]>::to_vec).unwrap_or_default();
        if let Some(children) = c.get("concept").and_then(Value::as_array) {
            let mut chain = ancestors.clone();
            chain.push(code.to_owned());
            flatten_concepts(children, Some(&chain), out);
        }
        out.push((code.to_owned(), ancestors));
    }
}

fn collect_expansion(contains: &[Value], out: &mut BTreeSet<(String, String)>) {
    for c in contains {
        if let (Some(system), Some(code)) = (str_of(c, "system"), str_of(c, "code")) {
            out.insert((system.to_owned(), code.to_owned()));
        }
        if let Some(nested) = c.get("contains").and_then(Value::as_array) {
            collect_expansion(nested, out);
        }
    }
}

fn compact_search_parameters(bundle: &Value) -> Result<Vec<Value>> {
    let resources: Vec<&Value> = bundle_resources(bundle).collect();
    let code_by_url: HashMap<&str, &str> = resources
        .iter()
        .filter_map(|r| Some((str_of(r, "url")?, str_of(r, "code")?)))
        .collect();
    let mut out = Vec::new();
    for r in resources {
        let mut p = json!({
            "url": str_of(r, "url"),
            "code": str_of(r, "code"),
            "base": r.get("base"),
            "type": str_of(r, "type"),
        });
        for key in [
            "expression",
            "target",
            "modifier",
            "comparator",
            "chain",
            "multipleOr",
            "multipleAnd",
        ] {
            if let Some(v) = r.get(key) {
                p[key] = v.clone();
            }
        }
        if let Some(usage) = str_of(r, "xpathUsage")
            && usage != "normal"
        {
            p["usage"] = json!(usage);
        }
        if let Some(components) = r.get("component").and_then(Value::as_array) {
            let mut list = Vec::new();
            for c in components {
                let definition = str_of(c, "definition").context("component without definition")?;
                let code = code_by_url
                    .get(definition)
                    .with_context(|| format!("unknown component {definition}"))?;
                list.push(json!({"code": code, "expression": str_of(c, "expression")}));
            }
            p["component"] = Value::Array(list);
        }
        out.push(p);
    }
    Ok(out)
}
