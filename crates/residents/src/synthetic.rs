//! Generated regional data: residents of a county as its institutions register them, with the
//! errors real registrations carry — homophone characters (张伟 / 张玮), names romanised with
//! family and given swapped ("Wei Zhang"), pinyin typos, day and month swapped or digits
//! transposed in birth dates, mistyped or missing resident ID numbers, changed phones and
//! addresses. Deterministic for a seed, so tests and benchmarks see the same people. Test and
//! benchmark fixtures, not part of the service: compiled with the `fixtures` feature only.

use serde_json::{Value, json};

use crate::chinese::romanise;
use crate::gb11643::check_character;
pub use crate::random::Rng;

/// Surnames with rough weights (per thousand residents); the tail holds rarer and compound
/// surnames and those read differently as surnames.
const SURNAMES: &[(&str, u32)] = &[
    ("王", 72),
    ("李", 74),
    ("张", 69),
    ("刘", 54),
    ("陈", 46),
    ("杨", 31),
    ("黄", 25),
    ("赵", 23),
    ("吴", 21),
    ("周", 19),
    ("徐", 18),
    ("孙", 16),
    ("马", 15),
    ("朱", 15),
    ("胡", 14),
    ("郭", 12),
    ("何", 12),
    ("林", 12),
    ("高", 12),
    ("罗", 11),
    ("郑", 11),
    ("梁", 9),
    ("谢", 8),
    ("宋", 7),
    ("唐", 7),
    ("韩", 7),
    ("冯", 6),
    ("邓", 6),
    ("曹", 6),
    ("彭", 6),
    ("曾", 6),
    ("肖", 6),
    ("田", 5),
    ("董", 5),
    ("潘", 5),
    ("袁", 5),
    ("蔡", 5),
    ("蒋", 8),
    ("余", 5),
    ("杜", 4),
    ("叶", 4),
    ("程", 4),
    ("魏", 4),
    ("苏", 4),
    ("吕", 4),
    ("丁", 4),
    ("任", 4),
    ("卢", 4),
    ("姚", 3),
    ("沈", 3),
    ("龙", 3),
    ("石", 3),
    ("欧阳", 1),
    ("司马", 1),
    ("诸葛", 1),
    ("单", 1),
    ("区", 1),
    ("仇", 1),
    ("覃", 2),
    ("麻", 2),
    ("滕", 1),
    ("杨", 0),
];

/// Given-name characters in groups of one pronunciation: a registration clerk hearing the name
/// may write any member of the group.
const HOMOPHONES: &[&str] = &[
    "伟玮炜",
    "芳方",
    "娜纳",
    "秀",
    "英瑛",
    "敏闽珉",
    "静婧靖",
    "丽莉俐",
    "强蔷",
    "磊蕾垒",
    "军君钧",
    "洋阳扬",
    "勇涌",
    "艳燕妍雁",
    "杰洁婕",
    "娟涓",
    "涛韬滔",
    "明铭鸣",
    "超",
    "兰岚",
    "霞",
    "平萍苹",
    "刚钢",
    "华桦骅",
    "玉钰",
    "红虹鸿",
    "玲铃",
    "芬",
    "彬斌",
    "鹏",
    "辉晖",
    "建健",
    "国",
    "志智",
    "文雯",
    "宇雨语",
    "浩皓昊",
    "凯",
    "博",
    "俊峻",
    "帆凡",
    "婷亭",
    "雪",
    "琳林霖",
    "晨辰",
    "欣新馨",
    "怡仪宜",
    "佳嘉家",
    "子梓紫",
    "涵晗寒",
    "轩萱宣",
    "然",
    "思",
    "彤桐",
    "诺",
    "梅",
    "春",
    "金",
    "海",
    "波",
    "云芸",
    "飞菲",
    "成诚",
    "永",
    "慧惠",
    "丹",
    "亮",
    "健",
    "林",
    "东冬",
    "兵",
    "忠",
    "德",
    "山珊",
    "芳",
    "美",
    "荣蓉",
    "桂",
    "翠",
    "凤",
    "琴",
    "莲",
    "香",
    "燕",
    "学",
    "宏",
    "庆",
    "祥",
    "福",
    "生",
    "胜",
    "利",
    "贵",
    "勤",
];

/// County districts: (resident ID area code, district, postcode).
const DISTRICTS: &[(&str, &str, &str)] = &[
    ("520602", "碧江区", "554300"),
    ("520603", "万山区", "554200"),
    ("520621", "江口县", "554400"),
    ("520622", "玉屏侗族自治县", "554000"),
    ("520623", "石阡县", "555100"),
    ("520624", "思南县", "565100"),
    ("520625", "印江土家族苗族自治县", "555200"),
    ("520626", "德江县", "565200"),
    ("520627", "沿河土家族自治县", "565300"),
    ("520628", "松桃苗族自治县", "554100"),
];

const TOWNSHIPS: &[&str] = &[
    "和平镇",
    "灯塔街道",
    "坝黄镇",
    "滑石乡",
    "川硐镇",
    "六龙山乡",
    "漾头镇",
    "瓦屋乡",
    "云场坪镇",
    "桃映镇",
    "闵孝镇",
    "双江镇",
    "合水镇",
    "木黄镇",
    "龙溪镇",
    "中寨镇",
    "大兴镇",
    "平头镇",
];

const VILLAGES: &[&str] = &[
    "桃园村",
    "新寨村",
    "青龙村",
    "白岩村",
    "高坪村",
    "茶园村",
    "长坡村",
    "大坪村",
    "河坝村",
    "黄土村",
    "金竹村",
    "马鞍村",
    "木林村",
    "坪上村",
    "石门村",
    "水井村",
    "田坝村",
    "小河村",
];

/// One generated resident: the truth the registrations are noisy copies of.
#[derive(Debug, Clone)]
pub struct Resident {
    pub number: u32,
    pub family: String,
    pub given: String,
    pub male: bool,
    pub birth: (u16, u8, u8),
    pub national_id: String,
    pub phone: String,
    pub district: usize,
    pub township: String,
    pub village: String,
    pub group: u8,
    pub social_security: Option<String>,
}

/// The identifier systems generated data uses.
pub const NATIONAL_ID_SYSTEM: &str = "urn:oid:2.16.156.10011.1.1";
pub const SOCIAL_SECURITY_SYSTEM: &str = "urn:oid:2.16.156.10011.1.15";

/// Makes residents and their registrations.
pub struct Generator {
    rng: Rng,
    surname_total: u32,
}

impl Generator {
    pub fn new(seed: u64) -> Generator {
        Generator {
            rng: Rng::new(seed),
            surname_total: SURNAMES.iter().map(|(_, w)| w).sum(),
        }
    }

    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    fn surname(&mut self) -> &'static str {
        let mut pick = self.rng.below(u64::from(self.surname_total)) as u32;
        for (name, weight) in SURNAMES {
            if pick < *weight {
                return name;
            }
            pick -= weight;
        }
        "王"
    }

    fn given_char(&mut self) -> char {
        let group = self.rng.pick(HOMOPHONES);
        group.chars().next().unwrap_or('伟')
    }

    /// A new resident.
    pub fn resident(&mut self, number: u32) -> Resident {
        let family = self.surname().to_owned();
        let mut given = String::new();
        given.push(self.given_char());
        if self.rng.chance(0.7) {
            given.push(self.given_char());
        }
        let male = self.rng.chance(0.5);
        let year = 1930 + self.rng.below(91) as u16;
        let month = 1 + self.rng.below(12) as u8;
        let day = 1 + self
            .rng
            .below(u64::from(crate::record::days_in_month(year, month)))
            as u8;
        let district = self.rng.below(DISTRICTS.len() as u64) as usize;
        let sequence = self.rng.below(500) as u32 * 2 + u32::from(male);
        let first17 = format!(
            "{}{year:04}{month:02}{day:02}{sequence:03}",
            DISTRICTS[district].0
        );
        let check = check_character(&first17).unwrap_or('0');
        let phone = format!(
            "1{}{:09}",
            self.rng.pick(&['3', '5', '7', '8', '9']),
            self.rng.below(1_000_000_000)
        );
        Resident {
            number,
            family,
            given,
            male,
            birth: (year, month, day),
            national_id: format!("{first17}{check}"),
            phone,
            district,
            township: self.rng.pick(TOWNSHIPS).to_string(),
            village: self.rng.pick(VILLAGES).to_string(),
            group: 1 + self.rng.below(12) as u8,
            social_security: self
                .rng
                .chance(0.6)
                .then(|| format!("G{:09}", self.rng.below(1_000_000_000))),
        }
    }

    /// A registration of `resident` at institution `institution`, exact when `clean`, else with
    /// the errors registrations carry at their usual rates.
    pub fn registration(&mut self, resident: &Resident, institution: u32, clean: bool) -> Value {
        let rng = &mut self.rng;
        let noisy = |rng: &mut Rng, p: f64| !clean && rng.chance(p);
        // Name.
        let mut given = resident.given.clone();
        if noisy(rng, 0.12) {
            given = homophone_of(rng, &given);
        }
        let name = if noisy(rng, 0.06) {
            // Romanised, as a foreign-language form or an old system would hold it.
            let mut family = capitalised(&romanise(&resident.family, true));
            let mut given_latin = capitalised(&romanise(&given, false));
            if noisy(rng, 0.3) {
                given_latin = typo(rng, &given_latin);
            }
            if rng.chance(0.4) {
                std::mem::swap(&mut family, &mut given_latin);
            }
            json!({"family": family, "given": [given_latin]})
        } else if noisy(rng, 0.03) {
            json!({"text": format!("{}{}", resident.family, given)})
        } else if noisy(rng, 0.02) {
            json!({"family": resident.family})
        } else {
            json!({"family": resident.family, "given": [given]})
        };
        let mut patient = json!({
            "resourceType": "Patient",
            "identifier": [{
                "system": format!("urn:meridian:institution:{institution}:mrn"),
                "value": format!("MR{:08}", rng.below(100_000_000))
            }],
            "name": [name],
        });
        // Sex.
        if !noisy(rng, 0.02) {
            let mut male = resident.male;
            if noisy(rng, 0.01) {
                male = !male;
            }
            patient["gender"] = json!(if male { "male" } else { "female" });
        }
        // Birth date.
        if !noisy(rng, 0.03) {
            let (y, mut m, mut d) = resident.birth;
            let mut text = format!("{y:04}{m:02}{d:02}");
            if noisy(rng, 0.04) && d <= 12 && d != m {
                std::mem::swap(&mut m, &mut d);
                text = format!("{y:04}{m:02}{d:02}");
            } else if noisy(rng, 0.04) {
                let i = 2 + rng.below(5) as usize;
                let mut bytes = text.into_bytes();
                bytes.swap(i, i + 1);
                text = String::from_utf8(bytes).unwrap_or_default();
            } else if noisy(rng, 0.03) {
                let i = 3 + rng.below(5) as usize;
                let mut bytes = text.into_bytes();
                bytes[i] = b'0' + rng.below(10) as u8;
                text = String::from_utf8(bytes).unwrap_or_default();
            }
            if let Some(date) = crate::record::Date::parse(&text)
                && date.day <= crate::record::days_in_month(date.year, date.month)
            {
                patient["birthDate"] = json!(date.to_fhir());
            }
        }
        // Resident ID number: village clinics often lack it; clerks mistype it.
        if clean || rng.chance(0.7) {
            let mut number = resident.national_id.clone();
            if noisy(rng, 0.04) {
                let i = rng.below(17) as usize;
                let mut bytes = number.into_bytes();
                bytes[i] = b'0' + ((bytes[i] - b'0' + 1 + rng.below(9) as u8) % 10);
                number = String::from_utf8(bytes).unwrap_or_default();
            }
            append(
                &mut patient,
                "identifier",
                json!({"system": NATIONAL_ID_SYSTEM, "value": number}),
            );
        }
        if let Some(card) = &resident.social_security
            && (clean || rng.chance(0.5))
        {
            append(
                &mut patient,
                "identifier",
                json!({"system": SOCIAL_SECURITY_SYSTEM, "value": card}),
            );
        }
        // Phone.
        if clean || rng.chance(0.75) {
            let phone = if noisy(rng, 0.15) {
                format!(
                    "1{}{:09}",
                    rng.pick(&['3', '5', '8']),
                    rng.below(1_000_000_000)
                )
            } else {
                resident.phone.clone()
            };
            patient["telecom"] = json!([{"system": "phone", "value": phone}]);
        }
        // Address.
        if clean || rng.chance(0.75) {
            // One registration in ten is from after a move, often to another district.
            let (district, township, village) = if noisy(rng, 0.1) {
                let district = if rng.chance(0.5) {
                    rng.below(DISTRICTS.len() as u64) as usize
                } else {
                    resident.district
                };
                (
                    district,
                    rng.pick(TOWNSHIPS).to_string(),
                    rng.pick(VILLAGES).to_string(),
                )
            } else {
                (
                    resident.district,
                    resident.township.clone(),
                    resident.village.clone(),
                )
            };
            let (_, district, postcode) = DISTRICTS[district];
            patient["address"] = json!([{
                "line": [format!("{township}{village}{}组", resident.group)],
                "district": district,
                "city": "铜仁市",
                "state": "贵州省",
                "postalCode": postcode
            }]);
        }
        patient
    }
}

fn append(resource: &mut Value, key: &str, value: Value) {
    if let Some(array) = resource.get_mut(key).and_then(Value::as_array_mut) {
        array.push(value);
    } else {
        resource[key] = json!([value]);
    }
}

fn homophone_of(rng: &mut Rng, given: &str) -> String {
    let chars: Vec<char> = given.chars().collect();
    let i = rng.below(chars.len() as u64) as usize;
    let mut out = chars.clone();
    if let Some(group) = HOMOPHONES.iter().find(|g| g.contains(chars[i])) {
        let members: Vec<char> = group.chars().filter(|c| *c != chars[i]).collect();
        if !members.is_empty() {
            out[i] = *rng.pick(&members);
        }
    }
    out.into_iter().collect()
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// One typo in a Latin word: a letter dropped, doubled or swapped with the next.
fn typo(rng: &mut Rng, word: &str) -> String {
    let mut chars: Vec<char> = word.chars().collect();
    if chars.len() < 3 {
        return word.to_owned();
    }
    let i = 1 + rng.below(chars.len() as u64 - 2) as usize;
    match rng.below(3) {
        0 => {
            chars.remove(i);
        }
        1 => chars.insert(i, chars[i]),
        _ => chars.swap(i, i + 1),
    }
    chars.into_iter().collect()
}
