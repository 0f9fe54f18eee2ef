//! One resident: who they are (name, ID numbers, address, phone), their health (the chronic
//! diseases they have, whether anyone knows, how well they are controlled) and their Patient
//! resource.

use serde_json::{Value, json};

use crate::Region;
use crate::calendar::Date;
use crate::directory::{Department, Institution, person_names};
use crate::geography::{self, COUNTIES, Home};
use crate::identifiers;
use crate::json::{Code, identifier, meta, reference};
use crate::names::{Generation, PersonName, draw_name};
use crate::population::{self, Demographics};
use crate::random::{Rng, Stream};

/// The share of residents who have taken the electronic health card (the health code), by
/// age: children through their parents, the old less often than working adults.
const E_HEALTH_CARD_UNDER_6: f64 = 0.7;
const E_HEALTH_CARD_ADULT: f64 = 0.9;
const E_HEALTH_CARD_FROM_65: f64 = 0.72;
use crate::systems;

/// A chronic disease as the platform sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Chronic {
    Absent,
    /// Present, but nobody has diagnosed it: only kiosk readings show it.
    Undiagnosed,
    /// Diagnosed on `onset` (days since the epoch) and managed in primary care.
    Diagnosed {
        onset: i64,
        controlled: bool,
    },
}

impl Chronic {
    pub fn is_present(self) -> bool {
        self != Chronic::Absent
    }

    pub fn onset(self) -> Option<i64> {
        match self {
            Chronic::Diagnosed { onset, .. } => Some(onset),
            _ => None,
        }
    }

    pub fn is_uncontrolled(self) -> bool {
        matches!(
            self,
            Chronic::Undiagnosed
                | Chronic::Diagnosed {
                    controlled: false,
                    ..
                }
        )
    }
}

/// The resident's physiology: the means their measurements scatter around.
#[derive(Debug, Clone)]
pub struct Health {
    pub hypertension: Chronic,
    pub diabetes: Chronic,
    pub systolic: f64,
    pub diastolic: f64,
    /// Fasting glucose, mmol/L.
    pub glucose: f64,
}

pub struct Resident {
    pub index: u64,
    pub id: String,
    pub home: Home,
    pub male: bool,
    pub birth_date: Date,
    pub birth_day: i64,
    /// Age in whole years at the region's `as_of` date.
    pub age: i32,
    pub name: PersonName,
    pub resident_id: String,
    pub health: Health,
    /// The village doctor the resident has signed a family-doctor contract with.
    pub family_doctor: Option<String>,
    /// Whether the resident measures themself at the village health kiosk, and how often a
    /// year.
    pub kiosk_readings_per_year: f64,
}

impl Resident {
    pub fn new(region: &Region, index: u64) -> Resident {
        let seed = region.config.seed;
        let as_of = region.config.as_of;
        let home = geography::home_of(index);
        let mut rng = Rng::stream(seed, Stream::Resident, index, 0);
        let Demographics {
            male,
            birth_date,
            resident_id,
        } = population::demographics(&mut rng, &home, &region.slots[home.county], as_of);
        let age = birth_date.years_until(as_of);
        let name = draw_name(&mut rng, male, Generation::of_birth_year(birth_date.year));

        // Health draws from its own stream, so changing how names are drawn never changes
        // anyone's diseases.
        let mut rng = Rng::stream(seed, Stream::Resident, index, 1);
        let adult_day = Date::new(birth_date.year + 18, birth_date.month, birth_date.day).days();
        let health = draw_health(&mut rng, age, male, adult_day, as_of.days());
        let chronic_diagnosed =
            health.hypertension.onset().is_some() || health.diabetes.onset().is_some();
        let village = Institution::Village(home.county, home.township, home.village);
        let contract = if chronic_diagnosed || age >= 65 {
            0.75
        } else {
            0.35
        };
        let family_doctor = rng
            .chance(contract)
            .then(|| village.practitioner_id(Department::GeneralPractice, 1 + rng.below(2)));
        let kiosk_readings_per_year = if age >= 35 {
            let user = 0.12
                + if chronic_diagnosed { 0.30 } else { 0.0 }
                + if age >= 60 { 0.10 } else { 0.0 };
            if rng.chance(user) {
                if chronic_diagnosed { 8.0 } else { 3.0 }
            } else {
                0.0
            }
        } else {
            0.0
        };
        Resident {
            index,
            id: format!("res-{index}"),
            home,
            male,
            birth_date,
            birth_day: birth_date.days(),
            age,
            name,
            resident_id,
            health,
            family_doctor,
            kiosk_readings_per_year,
        }
    }

    pub fn village(&self) -> Institution {
        Institution::Village(self.home.county, self.home.township, self.home.village)
    }

    pub fn township(&self) -> Institution {
        Institution::Township(self.home.county, self.home.township)
    }

    pub fn county_hospital(&self) -> Institution {
        Institution::County(self.home.county)
    }

    /// Age in whole years on `day`.
    pub fn age_on(&self, day: i64) -> i32 {
        self.birth_date.years_until(Date::from_days(day))
    }

    /// The Patient resource. `hospitals` are the hospitals the resident's records visit: each
    /// gave the resident a medical-record number.
    pub fn patient(&self, region: &Region, hospitals: &[Institution]) -> Value {
        let seed = region.config.seed;
        let mut rng = Rng::stream(seed, Stream::Resident, self.index, 2);
        let home = &self.home;
        let county = &COUNTIES[home.county];
        let township = geography::township_name(seed, home.county, home.township);
        let village = geography::village_name(seed, home.county, home.township, home.village);

        // The card's number is drawn whether or not the resident took the card, so that the
        // rest of the Patient is the same either way.
        let e_health_card = identifiers::e_health_card_id(&mut rng);
        let holds_card =
            Rng::stream(seed, Stream::Resident, self.index, 6).chance(match self.age {
                ..6 => E_HEALTH_CARD_UNDER_6,
                65.. => E_HEALTH_CARD_FROM_65,
                _ => E_HEALTH_CARD_ADULT,
            });
        let mut identifiers = vec![
            json!({"use": "official", "system": systems::RESIDENT_ID, "value": self.resident_id}),
            identifier(
                systems::SOCIAL_SECURITY_CARD,
                &identifiers::social_security_card_number(region.card_numbers.apply(self.index)),
            ),
        ];
        if holds_card {
            identifiers.push(identifier(systems::E_HEALTH_CARD, &e_health_card));
        }
        identifiers.push(identifier(
            systems::HEALTH_RECORD_NUMBER,
            &format!(
                "{}{:03}{:03}{:05}",
                county.code,
                home.township + 1,
                home.village + 1,
                home.index_in_village + 1
            ),
        ));
        for hospital in hospitals {
            let mut mrn = Rng::stream(
                seed,
                Stream::Resident,
                self.index,
                16 + hospital_number(*hospital),
            );
            identifiers.push(json!({
                "use": "usual",
                "type": Code::new("http://terminology.hl7.org/CodeSystem/v2-0203", "MR", "Medical record number").concept(),
                "system": format!("{}{}", systems::MEDICAL_RECORD_NUMBER_PREFIX, hospital.id()),
                "value": format!("{:010}", mrn.below(10_000_000_000)),
            }));
        }

        let line = format!(
            "{township}{village}{}组{}号",
            rng.between(1, 12),
            rng.between(1, 80)
        );
        let mut patient = json!({
            "resourceType": "Patient",
            "id": self.id,
            "meta": meta(),
            "identifier": identifiers,
            "active": true,
            "name": person_names(&self.name),
        });
        // Children and some of the very old have no phone of their own.
        let has_phone = self.age >= 16 && rng.chance(if self.age >= 80 { 0.6 } else { 0.95 });
        if has_phone {
            patient["telecom"] = json!([{"system": "phone", "value": identifiers::mobile_number(&mut rng), "use": "mobile"}]);
        }
        patient["gender"] = json!(if self.male { "male" } else { "female" });
        patient["birthDate"] = json!(self.birth_date.fhir());
        patient["address"] = json!([{
            "use": "home",
            "type": "physical",
            "text": format!("{}{}{}{line}", geography::PROVINCE_NAME, geography::CITY_NAME, county.name),
            "line": [line],
            "city": geography::CITY_NAME,
            "district": county.name,
            "state": geography::PROVINCE_NAME,
            "country": "CN",
        }]);
        patient["maritalStatus"] = marital_status(&mut rng, self.age, self.male);
        if let Some(doctor) = &self.family_doctor {
            patient["generalPractitioner"] = json!([reference("Practitioner", doctor)]);
        }
        // The township health centre keeps the resident's health record.
        patient["managingOrganization"] = reference("Organization", &self.township().id());
        patient
    }
}

fn hospital_number(hospital: Institution) -> u64 {
    match hospital {
        Institution::Provincial => 0,
        Institution::City => 1,
        _ => 2,
    }
}

fn marital_status(rng: &mut Rng, age: i32, male: bool) -> Value {
    let married = match age {
        ..20 => 0.0,
        20..25 => 0.25,
        25..30 => 0.6,
        _ => 0.9,
    };
    let widowed = match age {
        ..55 => 0.0,
        55..70 => 0.08,
        70..80 => 0.25,
        _ => 0.5,
    } * if male { 0.6 } else { 1.2 };
    let roll = rng.unit();
    let (code, display) = if roll < widowed {
        ("W", "Widowed")
    } else if roll < widowed + married * 0.96 {
        ("M", "Married")
    } else if roll < widowed + married {
        ("D", "Divorced")
    } else {
        ("S", "Never Married")
    };
    Code::new(systems::MARITAL_STATUS, code, display).concept()
}

fn draw_health(rng: &mut Rng, age: i32, male: bool, adult_day: i64, as_of_day: i64) -> Health {
    let mut chronic = |prevalence: f64, aware: f64, controlled: f64| {
        if !rng.chance(prevalence) {
            return Chronic::Absent;
        }
        if !rng.chance(aware) {
            return Chronic::Undiagnosed;
        }
        // Diagnosed up to fifteen years ago, never before adulthood.
        let onset = (as_of_day - rng.between(30, 15 * 365)).max(adult_day);
        Chronic::Diagnosed {
            onset,
            controlled: rng.chance(controlled),
        }
    };
    let hypertension = chronic(
        population::hypertension_prevalence(age, male),
        population::HYPERTENSION_AWARE,
        population::HYPERTENSION_CONTROLLED_IF_AWARE,
    );
    let diabetes = chronic(
        population::diabetes_prevalence(age, male),
        population::DIABETES_AWARE,
        population::DIABETES_CONTROLLED_IF_AWARE,
    );

    let adult_age = f64::from(age.max(18) - 18);
    let systolic = match hypertension {
        Chronic::Absent if age < 18 => rng.normal_within(98.0 + f64::from(age), 8.0, 80.0, 125.0),
        Chronic::Absent => rng.normal_within(108.0 + 0.45 * adult_age, 9.0, 90.0, 138.0),
        Chronic::Undiagnosed => rng.normal_within(148.0, 10.0, 138.0, 185.0),
        Chronic::Diagnosed {
            controlled: true, ..
        } => rng.normal_within(128.0, 6.0, 110.0, 139.0),
        Chronic::Diagnosed {
            controlled: false, ..
        } => rng.normal_within(152.0, 11.0, 140.0, 195.0),
    };
    // Diastolic follows systolic; after sixty arteries stiffen and it falls (isolated
    // systolic hypertension is the common form in the old).
    let stiffening = f64::from((age - 60).max(0)) * 0.3;
    let diastolic = (0.45 * systolic + 24.0 + rng.normal(0.0, 4.0) - stiffening).clamp(50.0, 125.0);
    let glucose = match diabetes {
        Chronic::Absent if age >= 30 && rng.chance(population::IMPAIRED_FASTING_GLUCOSE) => {
            rng.normal_within(6.2, 0.25, 5.7, 6.9)
        }
        Chronic::Absent => rng.normal_within(5.0, 0.35, 4.0, 6.0),
        Chronic::Undiagnosed => rng.normal_within(8.2, 1.4, 7.0, 14.0),
        Chronic::Diagnosed {
            controlled: true, ..
        } => rng.normal_within(6.6, 0.4, 5.6, 7.2),
        Chronic::Diagnosed {
            controlled: false, ..
        } => rng.normal_within(9.8, 1.8, 7.3, 18.0),
    };
    Health {
        hypertension,
        diabetes,
        systolic,
        diastolic,
        glucose,
    }
}
