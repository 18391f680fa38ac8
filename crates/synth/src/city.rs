//! The city in memory: people, households and every fact a department records about them.
//! Exports are views of this model with each department's habits; the oracle reads the model.

use chrono::{Datelike, NaiveDate};
use hedui_model::{ResidentId, Sex};

use crate::names::{self, COUNTIES};
use crate::rng::{Rng, mix};

/// The year the ledgers cover.
pub const YEAR: i32 = 2025;
/// Months of [`YEAR`] as a bit set: bit k is month k + 1.
pub type Months = u16;
pub const ALL_MONTHS: Months = 0x0FFF;

/// An absolute month (year * 12 + month - 1), for comparisons across years.
pub type Mon = i32;

pub fn mon(d: NaiveDate) -> Mon {
    d.year() * 12 + d.month0() as i32
}

pub fn mon_of_year(k: u32) -> Mon {
    YEAR * 12 + k as i32
}

pub fn fmt_mon(m: Mon) -> String {
    format!("{:04}-{:02}", m.div_euclid(12), m.rem_euclid(12) + 1)
}

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

pub fn first_day(m: Mon) -> NaiveDate {
    date(m.div_euclid(12), m.rem_euclid(12) as u32 + 1, 1)
}

pub fn last_day(m: Mon) -> NaiveDate {
    first_day(m + 1).pred_opt().expect("valid")
}

/// Months of YEAR from `from` (0-based) through `to` inclusive.
pub fn months_between(from: u32, to: u32) -> Months {
    (from..=to.min(11)).fold(0, |acc, k| acc | (1 << k))
}

/// Flags that keep planted cases apart from each other and from the background.
pub mod flag {
    pub const EMPLOYED: u16 = 1;
    pub const PENSION: u16 = 2;
    pub const BENEFIT: u16 = 4;
    pub const DIBAO: u16 = 8;
    pub const PRISON: u16 = 16;
    pub const PLANTED: u16 = 32;
    pub const ASSETS: u16 = 64;
    pub const DEAD: u16 = 128;
    pub const ENTERPRISE: u16 = 256;
}

#[derive(Debug, Clone)]
pub struct Person {
    pub id: ResidentId,
    pub sex: Sex,
    pub birth: NaiveDate,
    pub household: u32,
    pub flags: u16,
    /// The registry exports this person's legacy 15-digit number.
    pub legacy15: bool,
    pub moved_out: Option<NaiveDate>,
    /// Index into `City::deaths`.
    pub death: Option<u32>,
}

#[derive(Debug, Clone, Default)]
pub struct Death {
    pub person: u32,
    /// The true date, for the model; sources below may disagree.
    pub cremation: Option<NaiveDate>,
    pub certificate: Option<NaiveDate>,
    /// The household registry's cancellation date (status 死亡).
    pub registry: Option<NaiveDate>,
}

impl Death {
    /// The earliest date any source gives: the death month counts from it.
    pub fn earliest(&self) -> NaiveDate {
        [self.cremation, self.certificate, self.registry]
            .into_iter()
            .flatten()
            .min()
            .expect("a death has a source")
    }
}

#[derive(Debug, Clone)]
pub struct Household {
    pub no: String,
    pub county: u8,
    pub subdistrict: u8,
    pub community: u8,
    pub street: u8,
    pub number: u16,
    pub members: Vec<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PensionScheme {
    Enterprise,
    Resident,
}

#[derive(Debug, Clone)]
pub struct Pension {
    pub person: u32,
    pub scheme: PensionScheme,
    pub cents: i64,
    pub months: Months,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MedScheme {
    Employee,
    UrbanResident,
    UrbanRural,
}

#[derive(Debug, Clone)]
pub struct Enrolment {
    pub person: u32,
    pub scheme: MedScheme,
    pub region: &'static str,
    pub start: NaiveDate,
    pub end: Option<NaiveDate>,
}

#[derive(Debug, Clone)]
pub struct RuralCoop {
    pub person: u32,
    pub year: i32,
    pub county: u8,
}

#[derive(Debug, Clone)]
pub struct Benefit {
    pub person: u32,
    pub months: Months,
    pub cents: i64,
}

#[derive(Debug, Clone)]
pub struct Employer {
    pub name: String,
    pub credit_code: String,
}

#[derive(Debug, Clone)]
pub struct Employment {
    pub person: u32,
    pub employer: u32,
    pub months: Months,
    pub base_cents: i64,
    pub provident: bool,
    pub taxed: bool,
}

/// Income a person declared to the tax bureau or a provident-fund base, outside employment.
#[derive(Debug, Clone)]
pub struct IncomeLine {
    pub person: u32,
    pub months: Months,
    pub cents: i64,
}

#[derive(Debug, Clone)]
pub struct Dibao {
    pub no: String,
    pub household: u32,
    pub members: Vec<u32>,
    /// Covered persons on the roster (as of the export).
    pub roster_covered: u8,
    /// Covered persons each payment was computed for; 0 = no payment that month.
    pub covered: [u8; 12],
    pub cents_per_person: i64,
    pub start: NaiveDate,
}

impl Dibao {
    pub fn payment_cents(&self, k: usize) -> i64 {
        i64::from(self.covered[k]) * self.cents_per_person
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VehicleKind {
    Car,
    Motorcycle,
    ThreeWheeler,
    Truck,
}

#[derive(Debug, Clone)]
pub struct Vehicle {
    pub plate: String,
    pub kind: VehicleKind,
    pub owner: u32,
    pub registered: NaiveDate,
    pub deregistered: Option<NaiveDate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    Residential,
    Commercial,
    Parking,
}

#[derive(Debug, Clone)]
pub struct Property {
    pub owner: u32,
    pub location: String,
    pub area_centi: i64,
    pub usage: Usage,
    pub registered: NaiveDate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BizStatus {
    Active,
    Revoked,
    Cancelled,
}

#[derive(Debug, Clone)]
pub struct Business {
    pub name: String,
    pub credit_code: String,
    pub rep: u32,
    pub capital_wan_centi: i64,
    pub status: BizStatus,
    /// 成立日期: an asset from this day on.
    pub founded: NaiveDate,
}

#[derive(Debug, Clone)]
pub struct Prison {
    pub person: u32,
    pub entry: NaiveDate,
    pub release: Option<NaiveDate>,
}

/// The whole city.
#[derive(Debug, Default)]
pub struct City {
    pub seed: u64,
    pub persons: Vec<Person>,
    pub households: Vec<Household>,
    pub deaths: Vec<Death>,
    pub pensions: Vec<Pension>,
    pub enrolments: Vec<Enrolment>,
    pub rural_coop: Vec<RuralCoop>,
    pub benefits: Vec<Benefit>,
    pub employers: Vec<Employer>,
    pub employments: Vec<Employment>,
    pub extra_tax: Vec<IncomeLine>,
    pub extra_provident: Vec<IncomeLine>,
    pub dibao: Vec<Dibao>,
    pub vehicles: Vec<Vehicle>,
    pub properties: Vec<Property>,
    pub businesses: Vec<Business>,
    pub prisons: Vec<Prison>,
}

/// Age in whole years on 1 January of YEAR.
pub fn age(p: &Person) -> i32 {
    let ref_day = date(YEAR, 1, 1);
    let mut a = ref_day.year() - p.birth.year();
    if (p.birth.month(), p.birth.day()) > (ref_day.month(), ref_day.day()) {
        a -= 1;
    }
    a
}

pub fn retired(p: &Person) -> bool {
    age(p) >= if p.sex == Sex::Male { 60 } else { 55 }
}

impl City {
    /// A person's name, derived from the seed and index rather than stored.
    pub fn name(&self, person: u32) -> String {
        let h = mix(self.seed ^ 0x4E41_4D45, u64::from(person));
        if h.is_multiple_of(997) {
            return names::MINORITY_NAMES[(h >> 16) as usize % names::MINORITY_NAMES.len()]
                .to_string();
        }
        let surname = names::SURNAMES[(h >> 8) as usize % names::SURNAMES.len()];
        let g1 = names::GIVEN[(h >> 20) as usize % names::GIVEN.len()];
        if (h >> 40).is_multiple_of(3) {
            format!("{surname}{g1}")
        } else {
            let g2 = names::GIVEN[(h >> 30) as usize % names::GIVEN.len()];
            format!("{surname}{g1}{g2}")
        }
    }

    pub fn county_of(&self, person: u32) -> &'static names::County {
        &COUNTIES[self.households[self.persons[person as usize].household as usize].county as usize]
    }

    pub fn address(&self, household: u32) -> String {
        let h = &self.households[household as usize];
        let c = &COUNTIES[h.county as usize];
        format!(
            "湖北省宜昌市{}{}{}{}号",
            c.name,
            c.subdistricts[h.subdistrict as usize % c.subdistricts.len()],
            names::STREETS[h.street as usize % names::STREETS.len()],
            h.number
        )
    }

    pub fn community(&self, household: u32) -> String {
        let h = &self.households[household as usize];
        let stem = names::COMMUNITY_STEMS[h.community as usize % names::COMMUNITY_STEMS.len()];
        let county = &COUNTIES[h.county as usize];
        let suffix = if county.code.ends_with("02") || county.code.ends_with("03") {
            "社区"
        } else {
            "村"
        };
        format!("{stem}{suffix}")
    }

    pub fn subdistrict(&self, household: u32) -> &'static str {
        let h = &self.households[household as usize];
        let c = &COUNTIES[h.county as usize];
        c.subdistricts[h.subdistrict as usize % c.subdistricts.len()]
    }

    pub fn death_of(&self, person: u32) -> Option<&Death> {
        self.persons[person as usize]
            .death
            .map(|i| &self.deaths[i as usize])
    }

    pub fn has(&self, person: u32, f: u16) -> bool {
        self.persons[person as usize].flags & f != 0
    }

    pub fn set(&mut self, person: u32, f: u16) {
        self.persons[person as usize].flags |= f;
    }
}

/// A valid credit code for a generated business.
pub fn credit_code(rng: &mut Rng, county: &str) -> String {
    const CHARS: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
    let mut body = format!("91{county}");
    for _ in 0..9 {
        body.push(CHARS[rng.below(CHARS.len())] as char);
    }
    let check = hedui_model::value::codes::credit_check_char(&body);
    body.push(check);
    body
}

/// Positions of the items of each person, for the few lookups planting and the oracle make.
pub fn index_by<T>(
    items: &[T],
    key: impl Fn(&T) -> u32,
) -> std::collections::HashMap<u32, Vec<usize>> {
    let mut idx: std::collections::HashMap<u32, Vec<usize>> = std::collections::HashMap::new();
    for (i, item) in items.iter().enumerate() {
        idx.entry(key(item)).or_default().push(i);
    }
    idx
}

/// Yuan with two decimals from cents.
pub fn yuan(cents: i64) -> String {
    hedui_model::Money::from_cents(cents).to_string()
}
