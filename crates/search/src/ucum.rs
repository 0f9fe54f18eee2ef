//! UCUM units we can compare across: each common unit code with its canonical unit and the
//! factor to it, so `5 mg` and `0.005 g` index (and match) alike. A table, not a UCUM engine:
//! units outside it are compared only as written. Factors are UCUM's own definitions.

/// (code, canonical unit, factor to the canonical unit).
const UNITS: &[(&str, &str, f64)] = &[
    // mass
    ("kg", "g", 1e3),
    ("g", "g", 1.0),
    ("mg", "g", 1e-3),
    ("ug", "g", 1e-6),
    ("mcg", "g", 1e-6),
    ("ng", "g", 1e-9),
    ("[lb_av]", "g", 453.592_37),
    ("[oz_av]", "g", 28.349_523_125),
    // length
    ("km", "m", 1e3),
    ("m", "m", 1.0),
    ("cm", "m", 1e-2),
    ("mm", "m", 1e-3),
    ("um", "m", 1e-6),
    ("[in_i]", "m", 0.0254),
    ("[ft_i]", "m", 0.3048),
    // volume
    ("L", "L", 1.0),
    ("l", "L", 1.0),
    ("dL", "L", 0.1),
    ("dl", "L", 0.1),
    ("mL", "L", 1e-3),
    ("ml", "L", 1e-3),
    ("uL", "L", 1e-6),
    ("ul", "L", 1e-6),
    // time (a and mo are the Julian year and month)
    ("a", "s", 31_557_600.0),
    ("mo", "s", 2_629_800.0),
    ("wk", "s", 604_800.0),
    ("d", "s", 86_400.0),
    ("h", "s", 3_600.0),
    ("min", "s", 60.0),
    ("s", "s", 1.0),
    ("ms", "s", 1e-3),
    // pressure: UCUM defines m[Hg] as 133.3220 kPa
    ("mm[Hg]", "Pa", 133.322),
    ("kPa", "Pa", 1e3),
    ("Pa", "Pa", 1.0),
    // mass concentration
    ("g/L", "g/L", 1.0),
    ("g/dL", "g/L", 10.0),
    ("mg/dL", "g/L", 1e-2),
    ("mg/L", "g/L", 1e-3),
    ("ug/mL", "g/L", 1e-3),
    ("ng/mL", "g/L", 1e-6),
    // substance concentration
    ("mol/L", "mol/L", 1.0),
    ("mmol/L", "mol/L", 1e-3),
    ("umol/L", "mol/L", 1e-6),
    ("nmol/L", "mol/L", 1e-9),
    // ratios and rates kept as they are
    ("%", "%", 1.0),
    ("kg/m2", "kg/m2", 1.0),
    ("/min", "/min", 1.0),
];

/// The canonical unit of a UCUM code and the factor that converts a value to it.
pub fn canonical(code: &str) -> Option<(&'static str, f64)> {
    UNITS
        .iter()
        .find(|(unit, _, _)| *unit == code)
        .map(|(_, canonical, factor)| (*canonical, *factor))
}

/// Every code of the table with this canonical unit, and its factor to it.
pub fn units_of(canonical: &str) -> impl Iterator<Item = (&'static str, f64)> + '_ {
    UNITS
        .iter()
        .filter(move |(_, c, _)| *c == canonical)
        .map(|(unit, _, factor)| (*unit, *factor))
}

#[cfg(test)]
mod tests {
    use super::{canonical, units_of};

    #[test]
    fn common_units_convert_to_one_canonical_unit() {
        let grams = |code| canonical(code).map(|(unit, factor)| (unit, 5.0 * factor));
        assert_eq!(grams("mg"), Some(("g", 0.005)));
        assert_eq!(grams("kg"), Some(("g", 5000.0)));
        assert_eq!(canonical("mm[Hg]").map(|c| c.0), Some("Pa"));
        assert_eq!(
            canonical("mg/dL").map(|(u, f)| (u, 100.0 * f)),
            Some(("g/L", 1.0))
        );
        assert_eq!(canonical("furlong"), None);
        assert!(units_of("Pa").any(|(unit, _)| unit == "mm[Hg]"));
    }

    #[test]
    fn millimetres_of_mercury_convert_with_the_ucum_definition() {
        // UCUM: m[Hg] = 133.3220 kPa, so 120 mm[Hg] is 15998.64 Pa (not the 15998.69 that
        // the conventional 133.322387415 Pa gives).
        let (_, factor) = canonical("mm[Hg]").unwrap();
        assert!((120.0 * factor - 15_998.64).abs() < 1e-9);
    }
}
