//! Chinese personal names, in characters and in pinyin.
//!
//! Surnames are drawn by frequency, in parts per ten thousand of the population. The top twenty
//! are rounded from the Ministry of Public Security's household-registration survey of 2007
//! (王 7.25%, 李 7.19%, 张 6.78%, 刘 5.38%, 陈 4.53% ... together about 53%); below them the
//! weights are approximate, falling with rank as that survey's list does (its top hundred
//! cover about 85% of people). Surnames outside the table are not generated: the weights are
//! renormalised over the table.
//!
//! Given names follow the fashions of their generation (names like 秀英 and 建国 for those born
//! before 1965, one-character names like 伟 and 丽 in the 1970s and 80s, 子轩 and 欣怡 for
//! children born after 2005), one or two characters. The pinyin is written per name rather
//! than per character, so polyphonic characters are spelled as they are read in names, and
//! follows the passport convention for ü (吕 → Lyu).

use crate::random::{Rng, Weighted};

/// (surname, pinyin, parts per ten thousand)
#[rustfmt::skip]
pub const SURNAMES: &[(&str, &str, u64)] = &[
    ("王", "Wang", 725), ("李", "Li", 719), ("张", "Zhang", 678), ("刘", "Liu", 538),
    ("陈", "Chen", 453), ("杨", "Yang", 308), ("赵", "Zhao", 229), ("黄", "Huang", 223),
    ("周", "Zhou", 212), ("吴", "Wu", 205), ("徐", "Xu", 167), ("孙", "Sun", 154),
    ("胡", "Hu", 131), ("朱", "Zhu", 126), ("高", "Gao", 121), ("林", "Lin", 118),
    ("何", "He", 117), ("郭", "Guo", 115), ("马", "Ma", 105), ("罗", "Luo", 86),
    ("梁", "Liang", 81), ("宋", "Song", 79), ("郑", "Zheng", 78), ("谢", "Xie", 72),
    ("韩", "Han", 69), ("唐", "Tang", 67), ("冯", "Feng", 65), ("于", "Yu", 62),
    ("董", "Dong", 61), ("肖", "Xiao", 58), ("程", "Cheng", 57), ("曹", "Cao", 57),
    ("袁", "Yuan", 55), ("邓", "Deng", 55), ("许", "Xu", 54), ("傅", "Fu", 51),
    ("沈", "Shen", 50), ("曾", "Zeng", 50), ("彭", "Peng", 49), ("吕", "Lyu", 48),
    ("苏", "Su", 46), ("卢", "Lu", 46), ("蒋", "Jiang", 45), ("蔡", "Cai", 45),
    ("贾", "Jia", 43), ("丁", "Ding", 42), ("魏", "Wei", 41), ("薛", "Xue", 40),
    ("叶", "Ye", 40), ("闫", "Yan", 38), ("余", "Yu", 38), ("潘", "Pan", 37),
    ("杜", "Du", 37), ("戴", "Dai", 35), ("夏", "Xia", 35), ("钟", "Zhong", 34),
    ("汪", "Wang", 34), ("田", "Tian", 33), ("任", "Ren", 33), ("姜", "Jiang", 32),
    ("范", "Fan", 32), ("方", "Fang", 31), ("石", "Shi", 31), ("姚", "Yao", 30),
    ("谭", "Tan", 30), ("廖", "Liao", 29), ("邹", "Zou", 29), ("熊", "Xiong", 28),
    ("金", "Jin", 28), ("陆", "Lu", 27), ("郝", "Hao", 27), ("孔", "Kong", 26),
    ("白", "Bai", 26), ("崔", "Cui", 25), ("康", "Kang", 25), ("毛", "Mao", 24),
    ("邱", "Qiu", 24), ("秦", "Qin", 23), ("江", "Jiang", 23), ("史", "Shi", 22),
    ("顾", "Gu", 22), ("侯", "Hou", 21), ("邵", "Shao", 21), ("孟", "Meng", 20),
    ("龙", "Long", 20), ("万", "Wan", 20), ("段", "Duan", 19), ("雷", "Lei", 19),
    ("钱", "Qian", 18), ("汤", "Tang", 18), ("尹", "Yin", 18), ("黎", "Li", 17),
    ("易", "Yi", 17), ("常", "Chang", 17), ("武", "Wu", 16), ("乔", "Qiao", 16),
    ("贺", "He", 16), ("赖", "Lai", 15), ("龚", "Gong", 15), ("文", "Wen", 15),
];

/// The generation a given name belongs to, by year of birth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    /// Born before 1965.
    Elder,
    /// Born 1965–1984.
    Middle,
    /// Born 1985–2004.
    Young,
    /// Born 2005 or later.
    Child,
}

impl Generation {
    pub fn of_birth_year(year: i32) -> Generation {
        match year {
            ..1965 => Generation::Elder,
            1965..1985 => Generation::Middle,
            1985..2005 => Generation::Young,
            _ => Generation::Child,
        }
    }
}

/// (given name, pinyin) by generation, for men.
#[rustfmt::skip]
const MALE_GIVEN: [&[(&str, &str)]; 4] = [
    &[
        ("建国", "Jianguo"), ("国强", "Guoqiang"), ("德明", "Deming"), ("志明", "Zhiming"),
        ("国华", "Guohua"), ("振华", "Zhenhua"), ("光明", "Guangming"), ("福生", "Fusheng"),
        ("文华", "Wenhua"), ("长青", "Changqing"), ("树林", "Shulin"), ("永福", "Yongfu"),
        ("德胜", "Desheng"), ("国庆", "Guoqing"), ("建华", "Jianhua"), ("玉林", "Yulin"),
        ("金山", "Jinshan"), ("世昌", "Shichang"), ("正清", "Zhengqing"), ("明", "Ming"),
    ],
    &[
        ("建军", "Jianjun"), ("志强", "Zhiqiang"), ("伟", "Wei"), ("勇", "Yong"),
        ("军", "Jun"), ("斌", "Bin"), ("强", "Qiang"), ("磊", "Lei"), ("海涛", "Haitao"),
        ("建平", "Jianping"), ("晓东", "Xiaodong"), ("小军", "Xiaojun"), ("永强", "Yongqiang"),
        ("立新", "Lixin"), ("红兵", "Hongbing"), ("卫东", "Weidong"), ("文斌", "Wenbin"),
        ("建林", "Jianlin"), ("俊", "Jun"), ("刚", "Gang"),
    ],
    &[
        ("涛", "Tao"), ("鹏", "Peng"), ("浩", "Hao"), ("杰", "Jie"), ("俊杰", "Junjie"),
        ("宇", "Yu"), ("鑫", "Xin"), ("超", "Chao"), ("家豪", "Jiahao"), ("文博", "Wenbo"),
        ("子豪", "Zihao"), ("浩然", "Haoran"), ("明轩", "Mingxuan"), ("志伟", "Zhiwei"),
        ("嘉俊", "Jiajun"), ("天宇", "Tianyu"), ("博文", "Bowen"), ("凯", "Kai"),
        ("晨阳", "Chenyang"), ("帅", "Shuai"),
    ],
    &[
        ("子轩", "Zixuan"), ("浩宇", "Haoyu"), ("宇轩", "Yuxuan"), ("梓豪", "Zihao"),
        ("一鸣", "Yiming"), ("俊熙", "Junxi"), ("梓睿", "Zirui"), ("沐阳", "Muyang"),
        ("睿泽", "Ruize"), ("浩轩", "Haoxuan"), ("子墨", "Zimo"), ("宇航", "Yuhang"),
        ("奕辰", "Yichen"), ("皓轩", "Haoxuan"), ("铭泽", "Mingze"), ("俊宇", "Junyu"),
        ("子睿", "Zirui"), ("博涵", "Bohan"), ("锦程", "Jincheng"), ("昊", "Hao"),
    ],
];

/// (given name, pinyin) by generation, for women.
#[rustfmt::skip]
const FEMALE_GIVEN: [&[(&str, &str)]; 4] = [
    &[
        ("秀英", "Xiuying"), ("桂英", "Guiying"), ("秀兰", "Xiulan"), ("玉兰", "Yulan"),
        ("桂兰", "Guilan"), ("凤英", "Fengying"), ("玉珍", "Yuzhen"), ("淑珍", "Shuzhen"),
        ("秀珍", "Xiuzhen"), ("兰英", "Lanying"), ("翠花", "Cuihua"), ("金凤", "Jinfeng"),
        ("素芬", "Sufen"), ("桂芳", "Guifang"), ("玉梅", "Yumei"), ("秀云", "Xiuyun"),
        ("英", "Ying"), ("淑华", "Shuhua"), ("春兰", "Chunlan"), ("芳", "Fang"),
    ],
    &[
        ("丽", "Li"), ("红", "Hong"), ("燕", "Yan"), ("敏", "Min"), ("静", "Jing"),
        ("丽娟", "Lijuan"), ("秀梅", "Xiumei"), ("海燕", "Haiyan"), ("艳", "Yan"),
        ("霞", "Xia"), ("小红", "Xiaohong"), ("春梅", "Chunmei"), ("红梅", "Hongmei"),
        ("丽华", "Lihua"), ("玉芳", "Yufang"), ("建英", "Jianying"), ("晓红", "Xiaohong"),
        ("慧", "Hui"), ("萍", "Ping"), ("娟", "Juan"),
    ],
    &[
        ("婷婷", "Tingting"), ("丹", "Dan"), ("倩", "Qian"), ("雪", "Xue"),
        ("晶晶", "Jingjing"), ("佳怡", "Jiayi"), ("思思", "Sisi"), ("欣", "Xin"),
        ("琳", "Lin"), ("颖", "Ying"), ("雨婷", "Yuting"), ("丽娜", "Lina"),
        ("雪梅", "Xuemei"), ("佳佳", "Jiajia"), ("梦瑶", "Mengyao"), ("文静", "Wenjing"),
        ("晓雪", "Xiaoxue"), ("璐", "Lu"), ("月", "Yue"), ("莉", "Li"),
    ],
    &[
        ("子涵", "Zihan"), ("欣怡", "Xinyi"), ("梓涵", "Zihan"), ("诗涵", "Shihan"),
        ("雨桐", "Yutong"), ("可馨", "Kexin"), ("欣妍", "Xinyan"), ("梓萱", "Zixuan"),
        ("一诺", "Yinuo"), ("语嫣", "Yuyan"), ("若汐", "Ruoxi"), ("思彤", "Sitong"),
        ("依诺", "Yinuo"), ("紫涵", "Zihan"), ("佳琪", "Jiaqi"), ("雨涵", "Yuhan"),
        ("芷若", "Zhiruo"), ("梦琪", "Mengqi"), ("欣然", "Xinran"), ("安琪", "Anqi"),
    ],
];

/// A person's name in characters and in pinyin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName {
    pub family: &'static str,
    pub given: &'static str,
    pub family_pinyin: &'static str,
    pub given_pinyin: &'static str,
}

impl PersonName {
    /// 王秀英
    pub fn text(&self) -> String {
        format!("{}{}", self.family, self.given)
    }

    /// Wang Xiuying: family name first, as in Chinese.
    pub fn pinyin_text(&self) -> String {
        format!("{} {}", self.family_pinyin, self.given_pinyin)
    }
}

pub fn draw_name(rng: &mut Rng, male: bool, generation: Generation) -> PersonName {
    static TABLE: std::sync::OnceLock<Weighted> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| Weighted::new(SURNAMES.iter().map(|s| s.2)));
    let (family, family_pinyin, _) = SURNAMES[table.draw(rng)];
    let lists = if male { &MALE_GIVEN } else { &FEMALE_GIVEN };
    let &(given, given_pinyin) = rng.pick(lists[generation as usize]);
    PersonName {
        family,
        given,
        family_pinyin,
        given_pinyin,
    }
}
