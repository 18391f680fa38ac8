//! The vocabulary of a Yichang-like city: its real county-level divisions, streets, names.

/// Real county-level divisions of 宜昌市 (GB/T 2260), with sub-districts/towns and a weight for
/// how many people live there.
pub struct County {
    pub code: &'static str,
    pub name: &'static str,
    pub subdistricts: &'static [&'static str],
    pub weight: u32,
}

pub const COUNTIES: &[County] = &[
    County {
        code: "420502",
        name: "西陵区",
        subdistricts: &[
            "西陵街道",
            "学院街道",
            "云集街道",
            "西坝街道",
            "葛洲坝街道",
            "夜明珠街道",
        ],
        weight: 52,
    },
    County {
        code: "420503",
        name: "伍家岗区",
        subdistricts: &["大公桥街道", "万寿桥街道", "宝塔河街道", "伍家岗街道"],
        weight: 30,
    },
    County {
        code: "420504",
        name: "点军区",
        subdistricts: &["点军街道", "桥边镇", "艾家镇", "土城乡"],
        weight: 11,
    },
    County {
        code: "420505",
        name: "猇亭区",
        subdistricts: &["古老背街道", "云池街道", "虎牙街道"],
        weight: 7,
    },
    County {
        code: "420506",
        name: "夷陵区",
        subdistricts: &[
            "小溪塔街道",
            "分乡镇",
            "太平溪镇",
            "三斗坪镇",
            "乐天溪镇",
            "龙泉镇",
        ],
        weight: 52,
    },
    County {
        code: "420525",
        name: "远安县",
        subdistricts: &["鸣凤镇", "花林寺镇", "旧县镇", "洋坪镇"],
        weight: 18,
    },
    County {
        code: "420526",
        name: "兴山县",
        subdistricts: &["古夫镇", "昭君镇", "峡口镇", "南阳镇"],
        weight: 16,
    },
    County {
        code: "420527",
        name: "秭归县",
        subdistricts: &["茅坪镇", "归州镇", "屈原镇", "沙镇溪镇"],
        weight: 33,
    },
    County {
        code: "420528",
        name: "长阳土家族自治县",
        subdistricts: &["龙舟坪镇", "高家堰镇", "磨市镇", "都镇湾镇"],
        weight: 35,
    },
    County {
        code: "420529",
        name: "五峰土家族自治县",
        subdistricts: &["五峰镇", "渔洋关镇", "长乐坪镇", "湾潭镇"],
        weight: 18,
    },
    County {
        code: "420581",
        name: "宜都市",
        subdistricts: &["陆城街道", "红花套镇", "高坝洲镇", "聂家河镇", "枝城镇"],
        weight: 38,
    },
    County {
        code: "420582",
        name: "当阳市",
        subdistricts: &["玉阳街道", "坝陵街道", "玉泉街道", "两河镇", "河溶镇"],
        weight: 45,
    },
    County {
        code: "420583",
        name: "枝江市",
        subdistricts: &["马家店街道", "安福寺镇", "白洋镇", "董市镇", "七星台镇"],
        weight: 48,
    },
];

/// 宜昌县 became 夷陵区 in 2001; numbers issued before keep the retired code.
pub const RETIRED_YILING: &str = "420521";

/// Places where people who moved to Yichang were born (their IDs keep these codes).
pub const OTHER_ORIGINS: &[&str] = &[
    "420102", "420106", "421002", "422801", "422802", "420802", "500101", "430602", "411302",
    "360102",
];

pub const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "周", "吴", "徐", "孙", "朱", "马", "胡", "郭",
    "林", "何", "高", "罗", "郑", "梁", "谢", "宋", "唐", "许", "邓", "冯", "韩", "曹", "曾", "彭",
    "萧", "蔡", "潘", "田", "董", "袁", "于", "余", "叶", "蒋", "杜", "苏", "魏", "程", "吕", "丁",
    "沈", "任", "姚", "卢", "傅", "钟", "姜", "崔", "谭", "廖", "范", "汪", "陆", "金", "石", "戴",
    "贾", "韦", "夏", "邱", "方", "侯", "邹", "熊", "孟", "秦", "白", "江", "阎", "薛", "尹", "覃",
    "向", "望", "欧阳", "司马",
];

pub const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀", "霞", "平", "刚", "桂", "英", "华", "玉", "兰", "文", "辉", "建", "国", "红", "梅",
    "鹏", "飞", "波", "斌", "宇", "浩", "凯", "婷", "雪", "琳", "晨", "欣", "怡", "佳", "俊", "峰",
    "志", "春", "海", "云", "德", "胜", "荣", "福", "春", "燕", "凤", "林",
];

/// Names of people from Xinjiang, with the middle dot departments type in many ways.
pub const MINORITY_NAMES: &[&str] = &[
    "买买提·艾力",
    "阿依古丽·吐尔逊",
    "艾尔肯·托合提",
    "古丽娜尔·热合曼",
];

pub const STREETS: &[&str] = &[
    "夷陵大道",
    "东山大道",
    "沿江大道",
    "西陵一路",
    "西陵二路",
    "解放路",
    "胜利四路",
    "珍珠路",
    "发展大道",
    "城东大道",
    "港窑路",
    "体育场路",
    "云集路",
    "东湖大道",
    "桔城路",
];

pub const COMMUNITY_SUFFIX: &[&str] = &["社区", "村"];
pub const COMMUNITY_STEMS: &[&str] = &[
    "和平", "胜利", "东山", "桃花", "南湾", "北苑", "新华", "青山", "柳林", "石板", "白龙", "金桥",
    "长江", "黄柏", "三峡", "梅子",
];

pub const EMPLOYER_STEMS: &[&str] = &[
    "三峡",
    "宜化",
    "安琪",
    "葛洲坝",
    "人福",
    "兴发",
    "稻花香",
    "长江",
    "鄂西",
    "清江",
    "夷陵",
    "峡州",
    "楚天",
    "宜昌港",
    "西陵",
];
pub const EMPLOYER_KINDS: &[&str] = &[
    "化工有限公司",
    "建设集团有限公司",
    "酵母股份有限公司",
    "物流有限公司",
    "商贸有限公司",
    "电力设备有限公司",
    "食品有限公司",
    "医药有限公司",
    "旅游开发有限公司",
    "建材有限公司",
    "餐饮管理有限公司",
    "农业科技有限公司",
];

pub const FUNERAL_HOMES: &[&str] = &[
    "宜昌市殡仪馆",
    "夷陵区殡仪馆",
    "当阳市殡仪馆",
    "枝江市殡仪馆",
    "宜都市殡仪馆",
    "长阳县殡仪馆",
];
pub const HOSPITALS: &[&str] = &[
    "宜昌市中心人民医院",
    "宜昌市第一人民医院",
    "宜昌市第二人民医院",
    "三峡大学仁和医院",
    "夷陵医院",
    "当阳市人民医院",
    "枝江市人民医院",
    "宜都市第一人民医院",
];
pub const CAUSES: &[&str] = &[
    "脑梗死",
    "冠心病",
    "肺癌",
    "慢性阻塞性肺病",
    "高血压性心脏病",
    "肝癌",
    "脑出血",
    "胃癌",
    "呼吸衰竭",
    "交通事故",
];

pub const PLATE_LETTERS: &[&str] = &[
    "A", "B", "C", "D", "E", "F", "G", "H", "J", "K", "L", "M", "N", "P", "Q", "R",
];
