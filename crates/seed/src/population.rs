//! Who lives in the region: age and sex, resident ID numbers, and the chronic diseases the
//! platform manages, with the rates they are drawn from.
//!
//! Sources (figures rounded; the point is plausible shape, not epidemiology):
//! - Age: China's seventh census (2020), share of the population by five-year band (0–14
//!   17.95%, 15–59 63.35%, 60 and over 18.70%, 65 and over 13.50%). Sex: 51.2% male overall,
//!   with women the majority from the seventies on.
//! - Hypertension: the China Hypertension Survey 2012–2015 (Wang Z et al., Circulation
//!   2018;137:2344–56): 23.2% of adults, by age 4.0% (18–24), 6.1% (25–34), 15.0% (35–44),
//!   29.6% (45–54), 44.6% (55–64), 55.7% (65–74), 60.2% (75+); men 24.5%, women 21.9%.
//!   Aware of it (diagnosed): 46.9%; controlled: 15.3% of all, about a third of the aware.
//! - Diabetes: Li Y et al., BMJ 2020;369:m997 (2015–17, ADA criteria): 12.8% of adults,
//!   rising from about 5% under 30 to over 20% from 60; aware 36.7%; controlled in about half
//!   of those treated. Prediabetes is common (35%); here about one adult in seven over 30 has
//!   impaired fasting glucose.

use crate::calendar::Date;
use crate::geography::{COUNTIES, ELSEWHERE_ADDRESS_CODES, Home};
use crate::random::{Permutation, Rng, Weighted};

/// Share of the population by five-year age band (0–4, 5–9, ... 95–99), in parts per ten
/// thousand, from the 2020 census.
const AGE_BANDS: [u64; 20] = [
    556, 644, 609, 528, 534, 655, 881, 702, 666, 815, 863, 721, 515, 518, 354, 221, 145, 81, 31, 8,
];

/// How many birthdays one county's codes can number in one five-year band: five years of 365
/// days, 500 sequence numbers per sex a day.
pub const SLOTS_PER_ADDRESS_CODE: u64 = 5 * 365 * 500;

/// The most residents the region can number with unique ID numbers: each county's own codes,
/// then as many again whose IDs were first issued elsewhere.
pub const MAX_RESIDENTS_PER_COUNTY: u64 = 2 * SLOTS_PER_ADDRESS_CODE;

/// A resident's sex, birth date and ID number.
#[derive(Debug, Clone)]
pub struct Demographics {
    pub male: bool,
    pub birth_date: Date,
    pub resident_id: String,
}

/// Draws sex and birth date and numbers the resident's ID.
///
/// ID numbers must be unique, and two residents of one county born on the same day must get
/// different sequence numbers, without remembering who was numbered before (the generator
/// keeps no state across residents). So the resident's number within the county is mapped
/// through a bijection (`slots`, one per county) to a slot of (year within the five-year age
/// band, day of the year, sequence number); only the band is drawn at random. Two residents
/// of a county then differ in slot, and so in birth date or sequence.
pub fn demographics(rng: &mut Rng, home: &Home, slots: &Permutation, as_of: Date) -> Demographics {
    static BANDS: std::sync::OnceLock<Weighted> = std::sync::OnceLock::new();
    let bands = BANDS.get_or_init(|| Weighted::new(AGE_BANDS));
    let band = bands.draw(rng) as i32;
    let block = home.index_in_county / SLOTS_PER_ADDRESS_CODE;
    let slot = slots.apply(home.index_in_county % SLOTS_PER_ADDRESS_CODE);
    let year_in_band = (slot / (365 * 500)) as i32;
    let day_of_year = ((slot / 500) % 365) as u32;
    let sequence_pair = (slot % 500) as u32;
    // Born at the latest on the last day of the year before `as_of`, so nobody is born in
    // the future; the age at `as_of` is then the band's age or one more.
    let birth_year = as_of.year - 1 - (band * 5 + year_in_band);
    let birth_date = Date::common_year_day(birth_year, day_of_year);
    let age = birth_date.years_until(as_of);
    let male = rng.chance(male_share(age));
    let county = &COUNTIES[home.county];
    let address_code = match block {
        0 if birth_year < 2011 => county.code_before_2011,
        0 => county.code,
        _ => ELSEWHERE_ADDRESS_CODES[home.county],
    };
    let sequence = sequence_pair * 2 + u32::from(male);
    let resident_id =
        crate::identifiers::resident_id(address_code, &birth_date.compact(), sequence);
    Demographics {
        male,
        birth_date,
        resident_id,
    }
}

/// The share of men at an age: slightly more boys and working-age men, more women among the
/// old (2020 census).
fn male_share(age: i32) -> f64 {
    match age {
        ..60 => 0.52,
        60..75 => 0.49,
        75..85 => 0.45,
        _ => 0.40,
    }
}

/// The chance of having hypertension at an age (China Hypertension Survey 2012–2015).
pub fn hypertension_prevalence(age: i32, male: bool) -> f64 {
    let rate = match age {
        ..18 => 0.0,
        18..25 => 0.040,
        25..35 => 0.061,
        35..45 => 0.150,
        45..55 => 0.296,
        55..65 => 0.446,
        65..75 => 0.557,
        _ => 0.602,
    };
    rate * if male { 1.06 } else { 0.94 }
}

pub const HYPERTENSION_AWARE: f64 = 0.469;
/// Of those aware (managed), the share whose blood pressure is under 140/90.
pub const HYPERTENSION_CONTROLLED_IF_AWARE: f64 = 0.40;

/// The chance of having diabetes at an age (Li et al., 2020).
pub fn diabetes_prevalence(age: i32, male: bool) -> f64 {
    let rate = match age {
        ..18 => 0.0,
        18..30 => 0.045,
        30..40 => 0.065,
        40..50 => 0.105,
        50..60 => 0.165,
        60..70 => 0.215,
        _ => 0.235,
    };
    rate * if male { 1.08 } else { 0.92 }
}

pub const DIABETES_AWARE: f64 = 0.367;
pub const DIABETES_CONTROLLED_IF_AWARE: f64 = 0.45;
/// Impaired fasting glucose among adults over 30 without diabetes.
pub const IMPAIRED_FASTING_GLUCOSE: f64 = 0.14;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::Stream;

    /// The guarantee the slots give: residents of one county never share an ID number. At this
    /// many residents, numbers drawn at random would collide hundreds of times.
    #[test]
    fn two_hundred_thousand_residents_of_a_county_get_distinct_id_numbers() {
        let mut rng = Rng::stream(5, Stream::IdentifierSlots, 0, 0);
        let slots = Permutation::new(SLOTS_PER_ADDRESS_CODE, &mut rng);
        let as_of = Date::new(2026, 7, 1);
        let mut seen = std::collections::HashSet::new();
        for index_in_county in 0..200_000 {
            let home = Home {
                county: 3,
                township: 0,
                village: 0,
                index_in_county,
                index_in_village: 0,
            };
            let mut rng = Rng::stream(5, Stream::Resident, index_in_county, 0);
            let person = demographics(&mut rng, &home, &slots, as_of);
            assert!(person.birth_date < as_of);
            assert!(
                seen.insert(person.resident_id),
                "resident {index_in_county}"
            );
        }
    }
}
