//! A synthetic region for Meridian: a deterministic, streaming generator of a regional health
//! system as FHIR R4 resources (`serde_json::Value`). No HTTP, no database: it only makes
//! resources, for the benchmarks, the demos and the tests.
//!
//! The region is a province's hospital, a city's, county hospitals, township health centres
//! and village clinics with their staff and health kiosks, and the residents of the villages
//! with their records over the last years. `docs/synthetic-region.md` describes what is
//! generated and where the rates come from.
//!
//! ```ignore
//! let region = seed::Region::new(seed::Config::new(10_000, 42))?;
//! for (resource_type, resource) in region.resources() { ... }
//! ```
//!
//! Properties the tests hold it to:
//! - Deterministic: the same configuration gives the same resources, byte for byte.
//! - Streaming: memory does not grow with the number of residents (one resident's records
//!   are held at a time).
//! - Referentially ordered: a resource comes after every resource it references, so the
//!   stream can be loaded in order by a store that checks references.
//! - Stable as it grows: resident `i` and their records are the same in a region of N
//!   residents and in one of 2N.

pub mod calendar;
mod directory;
mod geography;
pub mod identifiers;
mod json;
mod names;
pub mod ndjson;
mod population;
mod random;
mod records;
mod resident;
pub mod systems;
mod terminology;

use serde_json::Value;

pub use calendar::Date;

/// One generated resource and its type.
pub type Generated = (&'static str, Value);

/// The resource types the generator writes: the directory's first, then the residents'.
///
/// No order of whole types puts every reference before its target: an Encounter is
/// `basedOn` the referral ServiceRequest made during an earlier Encounter. The stream of
/// [`Region::resources`] is ordered resource by resource instead; a loader that checks
/// references should follow it (or check them after loading).
pub const RESOURCE_TYPES: [&str; 15] = [
    "Organization",
    "Location",
    "Practitioner",
    "PractitionerRole",
    "Device",
    "Patient",
    "Condition",
    "EpisodeOfCare",
    "CarePlan",
    "Encounter",
    "ServiceRequest",
    "ImagingStudy",
    "Observation",
    "DiagnosticReport",
    "Task",
];

/// What region to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// How many residents.
    pub patients: u64,
    /// The seed: the same seed gives the same region.
    pub seed: u64,
    /// The day the records run up to (exclusive). Ages are counted on it. Fixed by default so
    /// that the output does not depend on when it is generated.
    pub as_of: Date,
    /// How many years of records before `as_of`.
    pub years: u32,
}

impl Config {
    pub fn new(patients: u64, seed: u64) -> Config {
        Config {
            patients,
            seed,
            as_of: Date::new(2026, 7, 1),
            years: 3,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error(
        "{requested} residents is more than the region can give unique ID numbers to (at most {limit})"
    )]
    TooManyResidents { requested: u64, limit: u64 },
    #[error("the window of records must be between 1 and 50 years, not {0}")]
    Years(u32),
}

/// A region ready to generate.
#[derive(Debug, Clone)]
pub struct Region {
    config: Config,
    layout: geography::Layout,
    /// Per county: the bijection from residents to ID-number slots (see `population.rs`).
    slots: Vec<random::Permutation>,
    /// The bijection from residents to social-security card numbers.
    card_numbers: random::Permutation,
    as_of_day: i64,
    window_start_day: i64,
}

/// How big a region is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub residents: u64,
    pub counties: u64,
    pub townships: u64,
    pub villages: u64,
    /// Organizations (one per institution).
    pub institutions: u64,
    pub practitioners: u64,
}

impl Region {
    pub fn new(config: Config) -> Result<Region, Error> {
        if config.years == 0 || config.years > 50 {
            return Err(Error::Years(config.years));
        }
        let layout = geography::Layout::for_residents(config.patients);
        if layout.largest_county() > population::MAX_RESIDENTS_PER_COUNTY {
            let villages_per_county =
                population::MAX_RESIDENTS_PER_COUNTY / geography::RESIDENTS_PER_VILLAGE;
            return Err(Error::TooManyResidents {
                requested: config.patients,
                limit: villages_per_county
                    * geography::RESIDENTS_PER_VILLAGE
                    * geography::COUNTIES.len() as u64,
            });
        }
        let slots = (0..geography::COUNTIES.len())
            .map(|county| {
                let mut rng = random::Rng::stream(
                    config.seed,
                    random::Stream::IdentifierSlots,
                    county as u64,
                    0,
                );
                random::Permutation::new(population::SLOTS_PER_ADDRESS_CODE, &mut rng)
            })
            .collect();
        let mut rng =
            random::Rng::stream(config.seed, random::Stream::IdentifierSlots, u64::MAX, 0);
        let card_numbers = random::Permutation::new(26 * 100_000_000, &mut rng);
        let as_of_day = config.as_of.days();
        Ok(Region {
            layout,
            slots,
            card_numbers,
            as_of_day,
            window_start_day: as_of_day - i64::from(config.years) * 365,
            config,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn size(&self) -> Size {
        let institutions: Vec<_> = directory::institutions(self.layout).collect();
        Size {
            residents: self.config.patients,
            counties: self.layout.counties() as u64,
            townships: self.layout.townships(),
            villages: self.layout.villages,
            institutions: institutions.len() as u64,
            practitioners: institutions
                .iter()
                .flat_map(|i| i.staff())
                .map(|(_, count)| count)
                .sum(),
        }
    }

    /// Every resource of the region, directory first, then resident by resident.
    pub fn resources(&self) -> Resources<'_> {
        Resources {
            region: self,
            institutions: Box::new(directory::institutions(self.layout)),
            next_resident: 0,
            buffer: Vec::new(),
        }
    }

    /// The directory alone: institutions, their staff and kiosks.
    pub fn directory(&self, out: &mut Vec<Generated>) {
        for institution in directory::institutions(self.layout) {
            institution.resources(self.config.seed, self.config.as_of, out);
        }
    }

    /// Every resource of resident `index` (below `config().patients`), Patient first. Any
    /// resident can be generated alone, in any order or on any thread.
    pub fn resident(&self, index: u64, out: &mut Vec<Generated>) {
        debug_assert!(index < self.config.patients);
        records::resident_records(self, index, out);
    }
}

/// The stream of a region's resources; see [`Region::resources`].
pub struct Resources<'a> {
    region: &'a Region,
    institutions: Box<dyn Iterator<Item = directory::Institution> + Send + 'a>,
    next_resident: u64,
    /// The rest of the current institution's or resident's resources, last first.
    buffer: Vec<Generated>,
}

impl Iterator for Resources<'_> {
    type Item = Generated;

    fn next(&mut self) -> Option<Generated> {
        loop {
            if let Some(item) = self.buffer.pop() {
                return Some(item);
            }
            let config = &self.region.config;
            if let Some(institution) = self.institutions.next() {
                institution.resources(config.seed, config.as_of, &mut self.buffer);
            } else if self.next_resident < config.patients {
                self.region.resident(self.next_resident, &mut self.buffer);
                self.next_resident += 1;
            } else {
                return None;
            }
            self.buffer.reverse();
        }
    }
}
