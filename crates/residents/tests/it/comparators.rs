//! The comparators, the GB 11643 check character and the romanisation, table-driven.

use expect_test::expect;
use residents::compare::{Field, compare};
use residents::record::{Date, Name, Record};
use residents::text::{edit_distance, jaro_winkler, soundex};
use residents::{chinese, gb11643};

#[test]
fn jaro_winkler_matches_the_published_examples() {
    // The classic examples from Winkler's papers.
    let cases = [
        ("martha", "marhta", 0.961),
        ("dwayne", "duane", 0.84),
        ("dixon", "dicksonx", 0.813),
    ];
    for (a, b, expected) in cases {
        let got = jaro_winkler(a, b);
        assert!((got - expected).abs() < 0.001, "{a} ~ {b}: {got}");
        assert_eq!(got, jaro_winkler(b, a), "symmetric");
    }
    assert_eq!(jaro_winkler("", ""), 0.0);
    assert_eq!(jaro_winkler("abc", "abc"), 1.0);
}

#[test]
fn edit_distance_counts_a_transposition_as_one() {
    let cases = [
        ("19800229", "19802029", 1),
        ("kitten", "sitting", 3),
        ("", "abc", 3),
        ("张伟", "张玮", 1),
        ("ab", "ba", 1),
    ];
    for (a, b, expected) in cases {
        assert_eq!(edit_distance(a, b), expected, "{a} / {b}");
    }
}

#[test]
fn soundex_codes() {
    let got: Vec<String> = ["robert", "rupert", "ashcraft", "tymczak", "zhang", ""]
        .iter()
        .map(|n| soundex(n))
        .collect();
    expect![[r#"["R163", "R163", "A261", "T522", "Z520", ""]"#]].assert_eq(&format!("{got:?}"));
}

#[test]
fn gb11643_check_characters_and_old_numbers() {
    // A number whose check character is X, one with a digit, and a mistyped one.
    assert_eq!(gb11643::check_character("11010519491231002"), Some('X'));
    assert!(gb11643::is_valid("11010519491231002X"));
    assert!(
        !gb11643::is_valid("11010519491231003X"),
        "a typo breaks the check"
    );
    assert_eq!(
        gb11643::normalise(" 11010519491231002x "),
        Some("11010519491231002X".into())
    );
    // A 15-digit number widens to 18 with the century and a check character.
    let widened = gb11643::normalise("110105491231002").expect("15 digits widen");
    assert_eq!(&widened[..17], "11010519491231002");
    assert!(gb11643::is_valid(&widened));
    assert_eq!(gb11643::normalise("12345"), None);
    // Eighteen bytes that are not eighteen characters are no number, not a panic.
    assert!(!gb11643::is_valid("é1234567890123456"));
    assert_eq!(
        gb11643::birth_date("11010519491231002X"),
        Some((1949, 12, 31))
    );
    assert_eq!(gb11643::is_male("11010519491231002X"), Some(false));
}

#[test]
fn names_romanise_to_pinyin_with_surname_readings() {
    let cases = [
        ("张伟", false),
        ("单", true),
        ("曾", true),
        ("欧阳娜娜", false),
        ("Zhāng Wěi", false),
        ("吕", true),
        ("Lv", true),
    ];
    let got: Vec<String> = cases
        .iter()
        .map(|(t, s)| chinese::romanise(&residents::text::fold(t), *s))
        .collect();
    expect![[r#"["zhangwei", "shan", "zeng", "ouyangnana", "zhangwei", "lu", "lu"]"#]]
        .assert_eq(&format!("{got:?}"));
    assert_eq!(
        chinese::split_han_name("欧阳娜娜"),
        Some(("欧阳".into(), "娜娜".into()))
    );
    assert_eq!(
        chinese::split_han_name("张伟"),
        Some(("张".into(), "伟".into()))
    );
    assert_eq!(chinese::split_han_name("Zhang Wei"), None);
}

fn person(family: &str, given: &str, birth: &str) -> Record {
    let mut record = Record::default();
    record.names.push(Name::new(family, given));
    record.birth_dates.extend(Date::parse(birth));
    record
}

#[test]
fn comparison_levels_for_the_errors_registrations_carry() {
    let cases = [
        // (a, b, family, given, birth date)
        (
            person("张", "伟", "1980-02-11"),
            person("张", "伟", "1980-02-11"),
            (1, 1, 1),
        ),
        (
            person("张", "伟", "1980-02-11"),
            person("张", "玮", "1980-11-02"),
            (1, 2, 2),
        ),
        (
            person("张", "伟", "1980-02-11"),
            person("Wei", "Zhang", "1980-02-11"),
            (2, 2, 1),
        ),
        (
            person("张", "伟", "1980-02-11"),
            person("Zhang", "Wie", "1908-02-11"),
            (2, 3, 2),
        ),
        (
            person("张", "伟", "1980-02-11"),
            person("李", "娜", "1980-03-12"),
            (5, 5, 4),
        ),
        (
            person("李", "娜", "1980-02-11"),
            person("李", "娜", "1980-02-21"),
            (1, 1, 2),
        ),
        (
            person("李", "娜", "1980-02-11"),
            person("李", "娜", "1980-05-11"),
            (1, 1, 2),
        ),
        (
            person("李", "娜", "1980-02-11"),
            person("李", "娜", "1980-02-25"),
            (1, 1, 3),
        ),
    ];
    for (a, b, (family, given, birth)) in cases {
        let c = compare(&a, &b);
        assert_eq!(
            (
                c.level(Field::Family),
                c.level(Field::Given),
                c.level(Field::BirthDate)
            ),
            (family, given, birth),
            "{a:?} / {b:?}"
        );
        assert_eq!(c.levels, compare(&b, &a).levels, "comparison is symmetric");
    }
}

fn living_at(street: &str) -> Record {
    let mut record = Record::default();
    record.add_address(street, "", "");
    record
}

#[test]
fn street_levels_forgive_spaces_a_missing_number_and_a_line_left_out() {
    let cases = [
        ("4290 warrambool close", "4290 warrambool close", 1),
        // A dropped space.
        ("6 trainer court", "6 trainercourt", 2),
        // No house number on one side, and a typo: the street's names are compared.
        ("trainwr court", "6 trainercourt", 2),
        // The second line alone against both lines.
        ("28 pondeossa", "28 john cleland crescent ponderossa", 2),
        // The house number alone is no more than similar.
        ("28", "28 john cleland crescent", 3),
        // The words are there, but the house numbers differ.
        ("5 milton", "14 andrea place milton", 4),
        ("12 smith street", "40 jones road", 4),
        // A village group in one line: no words to find, so Jaro–Winkler alone.
        ("桃园村3组", "桃园村4组", 2),
        ("桃园村3组", "杏林村8组", 4),
    ];
    for (a, b, level) in cases {
        let (a, b) = (living_at(a), living_at(b));
        let c = compare(&a, &b);
        assert_eq!(c.level(Field::Street), level, "{a:?} / {b:?}");
        assert_eq!(c.levels, compare(&b, &a).levels, "comparison is symmetric");
    }
}
