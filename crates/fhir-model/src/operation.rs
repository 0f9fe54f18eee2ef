//! How a service declares the FHIR operations it owns (`$everything`, `$match`, ...): once, as
//! data, so that the server's dispatcher and its CapabilityStatement read the same table and
//! cannot disagree. No HTTP here: a method is one of the few a FHIR operation is invoked with.

/// Where an operation is invoked: on the base (`[base]/$op`), on a type
/// (`[base]/Patient/$op`) or on one resource (`[base]/Patient/[id]/$op`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    System,
    Type,
    Instance,
}

/// The HTTP methods an operation may be invoked with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvokeMethod {
    Get,
    Post,
    /// Only the Bulk Data status endpoint: DELETE cancels an export.
    Delete,
}

impl InvokeMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            InvokeMethod::Get => "GET",
            InvokeMethod::Post => "POST",
            InvokeMethod::Delete => "DELETE",
        }
    }
}

/// Whether an operation is a FHIR operation (listed in the CapabilityStatement with its
/// OperationDefinition) or an endpoint of a FHIR specification that is reached through a
/// `$`-name but is not an operation: Bulk Data's status and file URLs, which the server hands
/// out in `Content-Location` and the manifest and which no OperationDefinition describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    Operation,
    /// Takes `path_segments` more path segments after its name (`$export-status/[job]`).
    Endpoint {
        path_segments: usize,
    },
}

/// Who may invoke an operation at all. What it then reads or writes is limited by the ordinary
/// rules of the read path and of writes, for the caller that invoked it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Audience {
    /// Every signed-in caller.
    SignedIn,
    /// Institutions (clinicians and institutions' clients) and the platform.
    Institutions,
    /// The resident the operation is about, institutions and the platform.
    ResidentsAndInstitutions,
    /// Administrators (and identity stewards) only.
    Administrators,
    /// Clients that act platform-wide, and administrators.
    Platform,
}

/// One operation as the service that owns it declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperationDecl {
    /// With its `$`: `$everything`.
    pub name: &'static str,
    /// The levels it is invoked at (one or more).
    pub levels: &'static [Level],
    /// The resource types it is invoked on at the type and instance levels; empty for every
    /// type. Ignored at the system level.
    pub resource_types: &'static [&'static str],
    pub methods: &'static [InvokeMethod],
    /// Whether it changes what the server holds (FHIR's `OperationDefinition.affectsState`:
    /// such an operation is never invoked with GET).
    pub affects_state: bool,
    /// The canonical URL of its OperationDefinition (the official one where there is one).
    pub definition: &'static str,
    pub kind: OperationKind,
    /// Who may invoke it.
    pub audience: Audience,
}

impl OperationDecl {
    /// The name as the CapabilityStatement gives it: without the `$`.
    pub fn code(&self) -> &'static str {
        self.name.trim_start_matches('$')
    }

    /// Whether it is invoked at `level` on `resource_type` (`None` at the system level).
    pub fn applies(&self, level: Level, resource_type: Option<&str>) -> bool {
        if !self.levels.contains(&level) {
            return false;
        }
        match (level, resource_type) {
            (Level::System, _) => true,
            (_, Some(resource_type)) => {
                self.resource_types.is_empty() || self.resource_types.contains(&resource_type)
            }
            (_, None) => false,
        }
    }

    /// Whether the CapabilityStatement lists it.
    pub fn is_listed(&self) -> bool {
        self.kind == OperationKind::Operation
    }

    /// How many path segments follow the name.
    pub fn path_segments(&self) -> usize {
        match self.kind {
            OperationKind::Operation => 0,
            OperationKind::Endpoint { path_segments } => path_segments,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPORT_GROUP: OperationDecl = OperationDecl {
        name: "$export",
        levels: &[Level::Instance],
        resource_types: &["Group"],
        methods: &[InvokeMethod::Get],
        affects_state: false,
        definition: "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export",
        kind: OperationKind::Operation,
        audience: Audience::SignedIn,
    };

    #[test]
    fn an_operation_applies_only_at_its_levels_and_types() {
        assert!(EXPORT_GROUP.applies(Level::Instance, Some("Group")));
        assert!(!EXPORT_GROUP.applies(Level::Instance, Some("Patient")));
        assert!(!EXPORT_GROUP.applies(Level::Type, Some("Group")));
        assert!(!EXPORT_GROUP.applies(Level::System, None));
        assert_eq!(EXPORT_GROUP.code(), "export");
        let any_type = OperationDecl {
            resource_types: &[],
            ..EXPORT_GROUP
        };
        assert!(any_type.applies(Level::Instance, Some("Observation")));
    }
}
