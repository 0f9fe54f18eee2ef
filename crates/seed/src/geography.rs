//! Where the region is and how it grows: one province, one prefecture-level city and its ten
//! counties (Tongren, Guizhou, whose platform keeps the records of 3.58 million residents from
//! 21 county, 155 township and 2,000+ village institutions), townships and villages.
//!
//! The region grows with the number of residents: every village holds
//! [`RESIDENTS_PER_VILLAGE`] residents (the last one fewer), villages are dealt to the ten
//! counties in turn, and every [`VILLAGES_PER_TOWNSHIP`] villages of a county make a township.
//! At 3.58 million residents that gives 2,387 villages and 200 townships, close to Tongren's
//! own figures; at a few hundred residents, one county, one township and one village. Beyond
//! some millions of residents the ten counties grow larger than real ones, but stay valid.
//!
//! Resident `i` always lives in the same village whatever the size of the region, so a region
//! of N residents is a prefix of one of 2N.
//!
//! County names and address codes follow GB/T 2260. Township and village names are made up
//! from common place-name elements; they are not real places.

use crate::random::{Permutation, Rng, Stream};

pub const PROVINCE_NAME: &str = "贵州省";
pub const PROVINCE_CODE: &str = "520000";
pub const CITY_NAME: &str = "铜仁市";
pub const CITY_CODE: &str = "520600";
/// The telephone area code of Tongren, and of Guiyang (where the provincial hospital is).
pub const CITY_AREA_CODE: &str = "0856";
pub const CAPITAL_AREA_CODE: &str = "0851";
pub const CAPITAL_NAME: &str = "贵阳市";

/// A county-level division.
#[derive(Debug, Clone, Copy)]
pub struct County {
    /// The GB/T 2260 code in force.
    pub code: &'static str,
    /// The code before 2011, when Tongren prefecture (5222) became the city 5206. ID numbers
    /// keep the address code of their first registration, so residents born before 2011 carry
    /// the old code.
    pub code_before_2011: &'static str,
    pub name: &'static str,
}

pub const COUNTIES: [County; 10] = [
    County {
        code: "520602",
        code_before_2011: "522201",
        name: "碧江区",
    },
    County {
        code: "520603",
        code_before_2011: "522230",
        name: "万山区",
    },
    County {
        code: "520621",
        code_before_2011: "522222",
        name: "江口县",
    },
    County {
        code: "520622",
        code_before_2011: "522223",
        name: "玉屏侗族自治县",
    },
    County {
        code: "520623",
        code_before_2011: "522224",
        name: "石阡县",
    },
    County {
        code: "520624",
        code_before_2011: "522225",
        name: "思南县",
    },
    County {
        code: "520625",
        code_before_2011: "522226",
        name: "印江土家族苗族自治县",
    },
    County {
        code: "520626",
        code_before_2011: "522227",
        name: "德江县",
    },
    County {
        code: "520627",
        code_before_2011: "522228",
        name: "沿河土家族自治县",
    },
    County {
        code: "520628",
        code_before_2011: "522229",
        name: "松桃苗族自治县",
    },
];

/// Address codes of ID numbers first issued elsewhere (residents who moved in), used only when
/// a county has more residents than its own codes can number (see `population.rs`).
pub const ELSEWHERE_ADDRESS_CODES: [&str; 10] = [
    "110105", "310115", "440106", "440305", "330106", "420106", "500103", "510107", "430104",
    "520102",
];

pub const RESIDENTS_PER_VILLAGE: u64 = 1_500;
pub const VILLAGES_PER_TOWNSHIP: u64 = 12;

/// Where resident `index` lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Home {
    pub county: usize,
    /// The township's number within its county, from 0.
    pub township: u64,
    /// The village's number within its township, from 0.
    pub village: u64,
    /// The resident's number within the county, from 0: unique per county, stable as the
    /// region grows.
    pub index_in_county: u64,
    /// The resident's number within the village, from 0.
    pub index_in_village: u64,
}

/// The shape of the region for a number of residents.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub villages: u64,
}

impl Layout {
    pub fn for_residents(residents: u64) -> Layout {
        Layout {
            villages: residents.div_ceil(RESIDENTS_PER_VILLAGE).max(1),
        }
    }

    pub fn counties(&self) -> usize {
        self.villages.min(COUNTIES.len() as u64) as usize
    }

    pub fn villages_in_county(&self, county: usize) -> u64 {
        let county = county as u64;
        let count = COUNTIES.len() as u64;
        if county >= self.villages {
            0
        } else {
            (self.villages - county).div_ceil(count)
        }
    }

    pub fn townships_in_county(&self, county: usize) -> u64 {
        self.villages_in_county(county)
            .div_ceil(VILLAGES_PER_TOWNSHIP)
    }

    pub fn villages_in_township(&self, county: usize, township: u64) -> u64 {
        let villages = self.villages_in_county(county);
        (villages - township * VILLAGES_PER_TOWNSHIP).min(VILLAGES_PER_TOWNSHIP)
    }

    pub fn townships(&self) -> u64 {
        (0..self.counties())
            .map(|c| self.townships_in_county(c))
            .sum()
    }

    /// The most residents any county holds.
    pub fn largest_county(&self) -> u64 {
        self.villages_in_county(0) * RESIDENTS_PER_VILLAGE
    }
}

pub fn home_of(index: u64) -> Home {
    let village_global = index / RESIDENTS_PER_VILLAGE;
    let index_in_village = index % RESIDENTS_PER_VILLAGE;
    let count = COUNTIES.len() as u64;
    let county = (village_global % count) as usize;
    let village_in_county = village_global / count;
    Home {
        county,
        township: village_in_county / VILLAGES_PER_TOWNSHIP,
        village: village_in_county % VILLAGES_PER_TOWNSHIP,
        index_in_county: village_in_county * RESIDENTS_PER_VILLAGE + index_in_village,
        index_in_village,
    }
}

#[rustfmt::skip]
const TOWNSHIP_STEMS: [&str; 40] = [
    "青山", "石桥", "龙潭", "白沙", "桃源", "凤凰", "杨柳", "高峰", "新寨", "黄土",
    "金竹", "大坪", "沙坝", "梅子", "双河", "平溪", "马场", "长坡", "岩门", "合水",
    "太平", "民和", "桂花", "红石", "官庄", "水口", "茶园", "坪上", "花桥", "两河",
    "甘溪", "木林", "板桥", "洞口", "龙井", "鹿鸣", "枫香", "天堂", "朗溪", "乌江",
];

#[rustfmt::skip]
const VILLAGE_STEMS: [&str; 40] = [
    "大湾", "小河", "中寨", "坪坝", "岩脚", "田坝", "新华", "联合", "光明", "红岩",
    "竹林", "杉树", "塘头", "水井", "高坡", "茶山", "上寨", "下坝", "凉风", "桐木",
    "石门", "沙田", "坳头", "龙塘", "河坝", "松林", "柏杨", "桥头", "金星", "团结",
    "胜利", "和平", "长岭", "槐花", "梨子", "核桃", "青龙", "白岩", "清水", "寨坝",
];

/// Prefixes that make more distinct names once the stems run out.
const NAME_PREFIXES: [&str; 10] = ["", "新", "东", "西", "南", "北", "上", "下", "大", "小"];

/// The distinct names a county's townships (or a township's villages) can take.
const NAME_SLOTS: u64 = (NAME_PREFIXES.len() * TOWNSHIP_STEMS.len()) as u64;

fn place_name(stems: &[&str; 40], permutation: Permutation, number: u64) -> String {
    let slot = permutation.apply(number % NAME_SLOTS);
    let stem = stems[(slot % stems.len() as u64) as usize];
    let prefix = NAME_PREFIXES[(slot / stems.len() as u64) as usize];
    format!("{prefix}{stem}")
}

/// The township's name (e.g. 青山镇): distinct within its county for up to 400 townships.
pub fn township_name(seed: u64, county: usize, township: u64) -> String {
    let mut rng = Rng::stream(seed, Stream::PlaceNames, county as u64, u64::MAX);
    let permutation = Permutation::new(NAME_SLOTS, &mut rng);
    let name = place_name(&TOWNSHIP_STEMS, permutation, township);
    // About one township in four is a 乡 rather than a 镇.
    let mut kind = Rng::stream(seed, Stream::PlaceNames, county as u64, township);
    let suffix = if kind.chance(0.25) { "乡" } else { "镇" };
    format!("{name}{suffix}")
}

/// The village's name (e.g. 石桥村): distinct within its township.
pub fn village_name(seed: u64, county: usize, township: u64, village: u64) -> String {
    let mut rng = Rng::stream(
        seed,
        Stream::PlaceNames,
        county as u64,
        (township + 1) << 20,
    );
    let permutation = Permutation::new(NAME_SLOTS, &mut rng);
    format!("{}村", place_name(&VILLAGE_STEMS, permutation, village))
}
