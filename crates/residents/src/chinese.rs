//! Chinese names: romanisation to toneless pinyin (so that 张伟, "Zhang Wei" and the homophone
//! 张玮 can be compared), the surnames read differently from the common reading of their
//! character, and splitting a full name written as one string into family and given names.

use pinyin::ToPinyin;

/// Whether `c` is a CJK unified ideograph (the basic block and extension A).
pub fn is_han(c: char) -> bool {
    matches!(c as u32, 0x4E00..=0x9FFF | 0x3400..=0x4DBF)
}

/// Whether the text has any Han character.
pub fn has_han(text: &str) -> bool {
    text.chars().any(is_han)
}

/// Characters whose reading as a surname differs from their most common reading: 单 is Shan
/// as a surname, not dan; 曾 is Zeng, not ceng.
const SURNAME_READINGS: &[(char, &str)] = &[
    ('单', "shan"),
    ('曾', "zeng"),
    ('区', "ou"),
    ('仇', "qiu"),
    ('解', "xie"),
    ('朴', "piao"),
    ('查', "zha"),
    ('覃', "qin"),
    ('乐', "yue"),
    ('盖', "ge"),
    ('缪', "miao"),
    ('翟', "zhai"),
    ('尉', "yu"),
    ('长', "chang"),
    ('重', "chong"),
    ('种', "chong"),
    ('秘', "bi"),
    ('召', "shao"),
    ('华', "hua"),
    ('任', "ren"),
];

/// Two-character surnames: the name 欧阳娜娜 is family 欧阳, given 娜娜.
const COMPOUND_SURNAMES: &[&str] = &[
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒",
    "夏侯", "轩辕", "令狐", "端木", "独孤", "南宫", "西门", "百里", "呼延", "澹台", "公冶", "宗政",
    "濮阳", "淳于", "单于", "太叔", "申屠", "钟离", "闾丘", "东郭", "万俟", "司空",
];

/// The toneless pinyin of one Han character, or `None` for a character the table lacks.
pub fn char_pinyin(c: char, as_surname: bool) -> Option<&'static str> {
    if as_surname && let Some((_, reading)) = SURNAME_READINGS.iter().find(|(s, _)| *s == c) {
        return Some(reading);
    }
    c.to_pinyin().map(|p| p.plain())
}

/// The romanised key of a name: Han characters as toneless pinyin run together, Latin letters
/// lower case, everything else dropped ("张伟" and "Zhang Wei" both give "zhangwei"). Pinyin's ü
/// is written u, v or ü by different systems; the key writes u for all three, on every name, so
/// that 吕, "Lu", "Lv" and "Lü" agree.
pub fn romanise(text: &str, as_surname: bool) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for (i, c) in text.chars().enumerate() {
        if is_han(c) {
            // Only the first character of a surname takes its surname reading.
            match char_pinyin(c, as_surname && i == 0) {
                Some(p) => out.extend(p.chars().map(|c| if c == 'ü' { 'u' } else { c })),
                None => out.push(c),
            }
        } else if c.is_ascii_alphabetic() {
            let c = c.to_ascii_lowercase();
            out.push(if c == 'v' { 'u' } else { c });
        } else if c == 'ü' || c == 'Ü' {
            out.push('u');
        }
    }
    out
}

/// Splits a full Chinese name written as one string ("欧阳娜娜", "张伟") into family and given
/// name; `None` when the text is not a Han name.
pub fn split_han_name(text: &str) -> Option<(String, String)> {
    let name: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '·')
        .collect();
    if name.chars().count() < 2 || !name.chars().all(is_han) {
        return None;
    }
    let family_len =
        if name.chars().count() >= 3 && COMPOUND_SURNAMES.iter().any(|s| name.starts_with(s)) {
            2
        } else {
            1
        };
    let family: String = name.chars().take(family_len).collect();
    let given: String = name.chars().skip(family_len).collect();
    Some((family, given))
}
