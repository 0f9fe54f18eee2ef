//! The search parameters in force: the official R4 ones, by resource type and code.

use std::collections::HashMap;
use std::sync::Arc;

use fhir_model::{Model, SearchParamDef, SearchParamType};

use crate::keys::ParamKey;

/// A search parameter as it applies to one resource type.
#[derive(Debug, Clone)]
pub struct Param {
    pub resource_type: Box<str>,
    pub code: Box<str>,
    pub kind: SearchParamType,
    pub key: ParamKey,
    pub definition: Arc<SearchParamDef>,
}

/// The search parameters of every resource type.
#[derive(Debug, Default)]
pub struct Registry {
    by_type: HashMap<Box<str>, HashMap<Box<str>, Arc<Param>>>,
}

impl Registry {
    /// The official R4 parameters of every resource type in `model`.
    pub fn r4(model: &Model) -> Registry {
        let mut registry = Registry::default();
        for resource_type in model.resource_types() {
            for definition in model.search_parameters_for(resource_type) {
                registry.add(resource_type, Arc::new(definition.clone()));
            }
        }
        for (resource_type, definition) in platform_parameters() {
            registry.add(resource_type, Arc::new(definition));
        }
        registry
    }

    /// Adds (or replaces) a parameter for one resource type.
    pub fn add(&mut self, resource_type: &str, definition: Arc<SearchParamDef>) {
        let param = Param {
            resource_type: resource_type.into(),
            code: definition.code.clone(),
            kind: definition.kind,
            key: ParamKey::new(resource_type, &definition.code),
            definition,
        };
        self.by_type
            .entry(resource_type.into())
            .or_default()
            .insert(param.code.clone(), Arc::new(param));
    }

    pub fn get(&self, resource_type: &str, code: &str) -> Option<&Arc<Param>> {
        self.by_type.get(resource_type)?.get(code)
    }

    /// Every parameter of a resource type, in no particular order.
    pub fn params_of<'a>(
        &'a self,
        resource_type: &str,
    ) -> impl Iterator<Item = &'a Arc<Param>> + 'a {
        self.by_type
            .get(resource_type)
            .into_iter()
            .flat_map(|m| m.values())
    }
}

/// The platform's own search parameters, beside the official ones: what its access rules ask
/// of a resource and R4 gives no parameter for (a Consent's provision type and data classes).
fn platform_parameters() -> Vec<(&'static str, SearchParamDef)> {
    let token = |code: &str, expression: &str| SearchParamDef {
        url: format!("https://meridian.example/fhir/SearchParameter/Consent-{code}").into(),
        code: code.into(),
        base: vec!["Consent".into()],
        kind: SearchParamType::Token,
        expression: Some(expression.into()),
        targets: Vec::new(),
        components: Vec::new(),
        modifier: Vec::new(),
        comparator: Vec::new(),
        usage: None,
    };
    vec![
        ("Consent", token("provision-type", "Consent.provision.type")),
        (
            "Consent",
            token("provision-class", "Consent.provision.class"),
        ),
    ]
}
