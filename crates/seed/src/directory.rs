//! The institutions of the region and their staff: Organization, Location, Practitioner,
//! PractitionerRole, and the health kiosk (Device) of every village.
//!
//! Levels, from the top: the provincial people's hospital (in the capital), the city people's
//! hospital, one people's hospital per county, one health centre per township, one clinic per
//! village. Each has a fixed staff by department (a representative sample, not the real
//! head-count: a county hospital has hundreds of doctors), so that any resident's record can
//! name a practitioner by id without the generator remembering the directory.

use serde_json::{Value, json};

use crate::Generated;
use crate::calendar::Date;
use crate::geography::{self, COUNTIES, Layout};
use crate::identifiers;
use crate::json::{Code, identifier, meta, reference};
use crate::names::{Generation, PersonName, draw_name};
use crate::random::{Rng, Stream};
use crate::systems;

/// One institution of the region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Institution {
    Provincial,
    City,
    County(usize),
    Township(usize, u64),
    Village(usize, u64, u64),
}

/// A clinical department, or the nursing staff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Department {
    GeneralPractice,
    Cardiology,
    Endocrinology,
    Neurology,
    Respiratory,
    Emergency,
    Radiology,
    Laboratory,
    Pediatrics,
    Surgery,
    Nursing,
}

impl Department {
    fn slug(self) -> &'static str {
        match self {
            Department::GeneralPractice => "gp",
            Department::Cardiology => "cardio",
            Department::Endocrinology => "endo",
            Department::Neurology => "neuro",
            Department::Respiratory => "resp",
            Department::Emergency => "er",
            Department::Radiology => "rad",
            Department::Laboratory => "lab",
            Department::Pediatrics => "peds",
            Department::Surgery => "surg",
            Department::Nursing => "nurse",
        }
    }

    fn chinese(self) -> &'static str {
        match self {
            Department::GeneralPractice => "全科",
            Department::Cardiology => "心血管内科",
            Department::Endocrinology => "内分泌科",
            Department::Neurology => "神经内科",
            Department::Respiratory => "呼吸内科",
            Department::Emergency => "急诊科",
            Department::Radiology => "放射科",
            Department::Laboratory => "检验科",
            Department::Pediatrics => "儿科",
            Department::Surgery => "普通外科",
            Department::Nursing => "护理部",
        }
    }

    /// The SNOMED CT practice setting (FHIR's c80 practice-codes).
    fn specialty(self) -> Option<Code> {
        let code = |code, display| Some(Code::new(systems::SNOMED, code, display));
        match self {
            Department::GeneralPractice => code("394814009", "General practice"),
            Department::Cardiology => code("394579002", "Cardiology"),
            Department::Endocrinology => code("394583002", "Endocrinology"),
            Department::Neurology => code("394591006", "Neurology"),
            Department::Respiratory => code("418112009", "Pulmonary medicine"),
            Department::Emergency => code("773568002", "Emergency medicine"),
            Department::Radiology => code("394914008", "Radiology"),
            Department::Laboratory => code("394915009", "General pathology"),
            Department::Pediatrics => code("394537008", "Pediatric specialty"),
            Department::Surgery => code("394609007", "General surgery"),
            Department::Nursing => None,
        }
    }
}

const VILLAGE_STAFF: &[(Department, u64)] = &[(Department::GeneralPractice, 2)];
const TOWNSHIP_STAFF: &[(Department, u64)] = &[
    (Department::GeneralPractice, 4),
    (Department::Laboratory, 1),
    (Department::Radiology, 1),
    (Department::Nursing, 2),
];
const COUNTY_STAFF: &[(Department, u64)] = &[
    (Department::Cardiology, 3),
    (Department::Endocrinology, 2),
    (Department::Neurology, 3),
    (Department::Respiratory, 3),
    (Department::Emergency, 3),
    (Department::Radiology, 3),
    (Department::Laboratory, 2),
    (Department::Pediatrics, 2),
    (Department::Surgery, 3),
    (Department::Nursing, 4),
];
const CITY_STAFF: &[(Department, u64)] = &[
    (Department::Cardiology, 4),
    (Department::Endocrinology, 3),
    (Department::Neurology, 4),
    (Department::Respiratory, 3),
    (Department::Emergency, 3),
    (Department::Radiology, 4),
    (Department::Laboratory, 3),
    (Department::Pediatrics, 3),
    (Department::Surgery, 4),
    (Department::Nursing, 5),
];
const PROVINCIAL_STAFF: &[(Department, u64)] = &[
    (Department::Cardiology, 6),
    (Department::Endocrinology, 4),
    (Department::Neurology, 6),
    (Department::Respiratory, 4),
    (Department::Emergency, 4),
    (Department::Radiology, 5),
    (Department::Laboratory, 4),
    (Department::Pediatrics, 4),
    (Department::Surgery, 6),
    (Department::Nursing, 6),
];

/// The five levels, as codes of Meridian's institution-level system.
fn level_code(institution: Institution) -> Code {
    let code = |code, display| Code::new(systems::INSTITUTION_LEVEL, code, display);
    match institution {
        Institution::Provincial => code("provincial-hospital", "省级医院"),
        Institution::City => code("city-hospital", "市级医院"),
        Institution::County(_) => code("county-hospital", "县级医院"),
        Institution::Township(..) => code("township-health-center", "乡镇卫生院"),
        Institution::Village(..) => code("village-clinic", "村卫生室"),
    }
}

impl Institution {
    /// The id of its Organization and of its Location (the same text: ids are per type).
    pub fn id(self) -> String {
        match self {
            Institution::Provincial => "prov-hosp".to_owned(),
            Institution::City => "city-hosp".to_owned(),
            Institution::County(c) => format!("county-hosp-{}", COUNTIES[c].code),
            Institution::Township(c, t) => format!("thc-{}-{}", COUNTIES[c].code, t + 1),
            Institution::Village(c, t, v) => {
                format!("vc-{}-{}-{}", COUNTIES[c].code, t + 1, v + 1)
            }
        }
    }

    pub fn staff(self) -> &'static [(Department, u64)] {
        match self {
            Institution::Provincial => PROVINCIAL_STAFF,
            Institution::City => CITY_STAFF,
            Institution::County(_) => COUNTY_STAFF,
            Institution::Township(..) => TOWNSHIP_STAFF,
            Institution::Village(..) => VILLAGE_STAFF,
        }
    }

    /// Whether it is a hospital (county level and up).
    pub fn is_hospital(self) -> bool {
        matches!(
            self,
            Institution::Provincial | Institution::City | Institution::County(_)
        )
    }

    /// The id of its `number`-th (from 1) practitioner of `department`.
    pub fn practitioner_id(self, department: Department, number: u64) -> String {
        debug_assert!(
            self.staff()
                .iter()
                .any(|&(d, count)| d == department && (1..=count).contains(&number)),
            "{self:?} has no {department:?} {number}"
        );
        format!("{}-{}-{number}", self.id(), department.slug())
    }

    /// One of its practitioners of `department`, at random.
    pub fn any_practitioner(self, department: Department, rng: &mut Rng) -> String {
        let count = self
            .staff()
            .iter()
            .find(|&&(d, _)| d == department)
            .map_or(1, |&(_, count)| count);
        self.practitioner_id(department, 1 + rng.below(count))
    }

    pub fn name(self, seed: u64) -> String {
        match self {
            Institution::Provincial => format!("{}人民医院", geography::PROVINCE_NAME),
            Institution::City => format!("{}人民医院", geography::CITY_NAME),
            Institution::County(c) => format!("{}人民医院", COUNTIES[c].name),
            Institution::Township(c, t) => format!(
                "{}{}卫生院",
                COUNTIES[c].name,
                geography::township_name(seed, c, t)
            ),
            Institution::Village(c, t, v) => format!(
                "{}{}卫生室",
                geography::township_name(seed, c, t),
                geography::village_name(seed, c, t, v)
            ),
        }
    }

    /// The address code of the place it is registered in.
    fn address_code(self) -> &'static str {
        match self {
            Institution::Provincial => geography::PROVINCE_CODE,
            Institution::City => geography::CITY_CODE,
            Institution::County(c) | Institution::Township(c, _) | Institution::Village(c, ..) => {
                COUNTIES[c].code
            }
        }
    }

    fn stream_index(self) -> u64 {
        match self {
            Institution::Provincial => 0,
            Institution::City => 1,
            Institution::County(c) => 2 + c as u64,
            Institution::Township(c, t) => (1 << 40) | ((c as u64) << 32) | t,
            Institution::Village(c, t, v) => (2 << 40) | ((c as u64) << 32) | (t << 8) | v,
        }
    }

    fn address(self, seed: u64, rng: &mut Rng) -> Value {
        let (city, district, line) = match self {
            Institution::Provincial => (
                geography::CAPITAL_NAME,
                None,
                format!("中山东路{}号", rng.between(1, 200)),
            ),
            Institution::City | Institution::County(_) => (
                geography::CITY_NAME,
                match self {
                    Institution::County(c) => Some(COUNTIES[c].name),
                    _ => Some(COUNTIES[0].name),
                },
                format!("人民路{}号", rng.between(1, 300)),
            ),
            Institution::Township(c, t) => (
                geography::CITY_NAME,
                Some(COUNTIES[c].name),
                format!(
                    "{}街{}号",
                    geography::township_name(seed, c, t),
                    rng.between(1, 99)
                ),
            ),
            Institution::Village(c, t, v) => (
                geography::CITY_NAME,
                Some(COUNTIES[c].name),
                format!(
                    "{}{}",
                    geography::township_name(seed, c, t),
                    geography::village_name(seed, c, t, v)
                ),
            ),
        };
        let text = format!(
            "{}{}{}{}",
            geography::PROVINCE_NAME,
            city,
            district.unwrap_or(""),
            line
        );
        let mut address =
            json!({"use": "work", "type": "physical", "text": text, "line": [line], "city": city});
        if let Some(district) = district {
            address["district"] = json!(district);
        }
        address["state"] = json!(geography::PROVINCE_NAME);
        address["country"] = json!("CN");
        address
    }

    fn phone(self, rng: &mut Rng) -> String {
        let area = match self {
            Institution::Provincial => geography::CAPITAL_AREA_CODE,
            _ => geography::CITY_AREA_CODE,
        };
        format!("{area}-{}", rng.between(5_000_000, 5_999_999))
    }

    /// Organization, Location, the staff (Practitioner and PractitionerRole for each) and,
    /// for a village, its health kiosk, in an order where every reference points backwards.
    pub fn resources(self, seed: u64, as_of: Date, out: &mut Vec<Generated>) {
        let mut rng = Rng::stream(seed, Stream::Institution, self.stream_index(), 0);
        let id = self.id();
        let name = self.name(seed);
        let address = self.address(seed, &mut rng);
        let phone = self.phone(&mut rng);
        let uscc = identifiers::public_institution_uscc(self.address_code(), &mut rng);

        let mut organization = json!({
            "resourceType": "Organization",
            "id": id,
            "meta": meta(),
            "identifier": [identifier(systems::UNIFIED_SOCIAL_CREDIT_CODE, &uscc)],
            "active": true,
            "type": [{"coding": [
                Code::new(systems::ORGANIZATION_TYPE, "prov", "Healthcare Provider").coding(),
                level_code(self).coding(),
            ]}],
            "name": name,
            "telecom": [{"system": "phone", "value": phone, "use": "work"}],
            "address": [address.clone()],
        });
        // Village clinics work under their township health centre (乡村一体化管理).
        if let Institution::Village(c, t, _) = self {
            organization["partOf"] = reference("Organization", &Institution::Township(c, t).id());
        }
        out.push(("Organization", organization));

        let location_type = if self.is_hospital() {
            Code::new(systems::ROLE_CODE, "HOSP", "Hospital").concept()
        } else {
            json!({"coding": [level_code(self).coding()]})
        };
        out.push((
            "Location",
            json!({
                "resourceType": "Location",
                "id": id,
                "meta": meta(),
                "status": "active",
                "name": name,
                "mode": "instance",
                "type": [location_type],
                "telecom": [{"system": "phone", "value": phone, "use": "work"}],
                "address": address,
                "physicalType": Code::new(systems::LOCATION_PHYSICAL_TYPE, "bu", "Building").concept(),
                "managingOrganization": reference("Organization", &id),
            }),
        ));

        for &(department, count) in self.staff() {
            for number in 1..=count {
                self.staff_member(seed, as_of, department, number, out);
            }
        }

        if let Institution::Village(c, t, v) = self {
            out.push((
                "Device",
                json!({
                    "resourceType": "Device",
                    "id": kiosk_id(c, t, v),
                    "meta": meta(),
                    "identifier": [identifier(systems::DEVICE_SERIAL, &format!("HK{:010}", rng.below(10_000_000_000)))],
                    "status": "active",
                    "deviceName": [{"name": "健康小屋自助检测一体机", "type": "user-friendly-name"}],
                    "type": {"text": "健康小屋自助检测一体机（血压、血糖）"},
                    "owner": reference("Organization", &id),
                    "location": reference("Location", &id),
                }),
            ));
        }
    }

    fn staff_member(
        self,
        seed: u64,
        as_of: Date,
        department: Department,
        number: u64,
        out: &mut Vec<Generated>,
    ) {
        let id = self.practitioner_id(department, number);
        let mut rng = Rng::stream(
            seed,
            Stream::Practitioner,
            self.stream_index(),
            ((department as u64) << 16) | number,
        );
        // Nurses are mostly women; doctors about half and half.
        let male = rng.chance(if department == Department::Nursing {
            0.08
        } else {
            0.5
        });
        let birth_year = as_of.year - rng.between(26, 58) as i32;
        let birth_date = Date::common_year_day(birth_year, rng.below(365) as u32);
        let name = draw_name(&mut rng, male, Generation::of_birth_year(birth_year));
        let (qualification, role) = match (self, department) {
            (_, Department::Nursing) => (("nurse", "护士"), ("nurse", "Nurse")),
            (Institution::Village(..), _) => (("village-doctor", "乡村医生"), ("doctor", "Doctor")),
            _ => (("physician", "执业医师"), ("doctor", "Doctor")),
        };
        out.push((
            "Practitioner",
            json!({
                "resourceType": "Practitioner",
                "id": id,
                "meta": meta(),
                "identifier": [identifier(systems::PRACTISING_CERTIFICATE, &format!("152{:012}", rng.below(1_000_000_000_000)))],
                "active": true,
                "name": person_names(&name),
                "gender": if male { "male" } else { "female" },
                "birthDate": birth_date.fhir(),
                "qualification": [{"code": Code::new(systems::QUALIFICATION, qualification.0, qualification.1).concept_with_text(qualification.1)}],
            }),
        ));
        let mut practitioner_role = json!({
            "resourceType": "PractitionerRole",
            "id": id,
            "meta": meta(),
            "active": true,
            "practitioner": reference("Practitioner", &id),
            "organization": reference("Organization", &self.id()),
            "code": [Code::new(systems::PRACTITIONER_ROLE, role.0, role.1).concept()],
        });
        let specialty = match department.specialty() {
            Some(code) => json!({"coding": [code.coding()], "text": department.chinese()}),
            None => json!({"text": department.chinese()}),
        };
        practitioner_role["specialty"] = json!([specialty]);
        practitioner_role["location"] = json!([reference("Location", &self.id())]);
        out.push(("PractitionerRole", practitioner_role));
    }
}

pub fn kiosk_id(county: usize, township: u64, village: u64) -> String {
    format!(
        "kiosk-{}-{}-{}",
        COUNTIES[county].code,
        township + 1,
        village + 1
    )
}

/// A name as two HumanNames: in characters, and in pinyin, each marked with the ISO 21090
/// representation (`IDE` ideographic, `ABC` alphabetic).
pub fn person_names(name: &PersonName) -> Value {
    let representation =
        |code: &str| json!([{"url": systems::NAME_REPRESENTATION, "valueCode": code}]);
    json!([
        {
            "extension": representation("IDE"),
            "use": "official",
            "text": name.text(),
            "family": name.family,
            "given": [name.given],
        },
        {
            "extension": representation("ABC"),
            "use": "official",
            "text": name.pinyin_text(),
            "family": name.family_pinyin,
            "given": [name.given_pinyin],
        },
    ])
}

/// Every institution of the region, in an order where an institution comes after the one it
/// is part of.
pub fn institutions(layout: Layout) -> impl Iterator<Item = Institution> {
    let counties = layout.counties();
    let hospitals = [Institution::Provincial, Institution::City]
        .into_iter()
        .chain((0..counties).map(Institution::County));
    let primary_care = (0..counties).flat_map(move |c| {
        (0..layout.townships_in_county(c)).flat_map(move |t| {
            std::iter::once(Institution::Township(c, t)).chain(
                (0..layout.villages_in_township(c, t)).map(move |v| Institution::Village(c, t, v)),
            )
        })
    });
    hospitals.chain(primary_care)
}
