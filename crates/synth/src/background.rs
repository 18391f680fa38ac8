//! The ordinary city: households, ages, work, pensions, insurance, assets, deaths. Built so that
//! ordinary life breaks no rule; the cases are planted afterwards (see `plant`).

use std::collections::HashSet;

use chrono::{Datelike, Duration, NaiveDate};
use hedui_model::{ResidentId, Sex};

use crate::city::*;
use crate::names::{self, COUNTIES, OTHER_ORIGINS, RETIRED_YILING};
use crate::rng::Rng;

fn pick_county(rng: &mut Rng) -> u8 {
    let total: u32 = COUNTIES.iter().map(|c| c.weight).sum();
    let mut x = rng.range(0, u64::from(total)) as u32;
    for (i, c) in COUNTIES.iter().enumerate() {
        if x < c.weight {
            return i as u8;
        }
        x -= c.weight;
    }
    0
}

fn birth_for_age(rng: &mut Rng, age: i32) -> NaiveDate {
    let y = YEAR - 1 - age;
    let day = rng.range(0, 365) as i64;
    date(y, 1, 1) + Duration::days(day)
}

fn is_urban(county: u8) -> bool {
    matches!(
        COUNTIES[county as usize].code,
        "420502" | "420503" | "420504" | "420505" | "420506"
    )
}

struct IdIssuer {
    used: HashSet<i64>,
}

impl IdIssuer {
    fn issue(&mut self, rng: &mut Rng, county: u8, birth: NaiveDate, sex: Sex) -> ResidentId {
        let code = COUNTIES[county as usize].code;
        let address = if rng.chance(0.08) {
            *rng.pick(OTHER_ORIGINS)
        } else if code == "420506" && birth.year() < 2001 && rng.chance(0.3) {
            RETIRED_YILING
        } else {
            code
        };
        loop {
            let mut seq = rng.range(0, 1000) as u16;
            let odd = seq % 2 == 1;
            if odd != (sex == Sex::Male) {
                seq = if seq == 999 { 998 } else { seq + 1 };
                if (seq % 2 == 1) != (sex == Sex::Male) {
                    seq -= 2;
                }
            }
            let id = ResidentId::from_parts(address, birth, seq);
            if self.used.insert(id.key()) {
                return id;
            }
        }
    }
}

pub fn build(persons: u64, seed: u64) -> City {
    let mut city = City {
        seed,
        ..Default::default()
    };
    let root = Rng::new(seed);
    populate(&mut city, &mut root.fork(1), persons);
    deaths(&mut city, &mut root.fork(2));
    work_and_pensions(&mut city, &mut root.fork(3));
    dibao(&mut city, &mut root.fork(4));
    assets(&mut city, &mut root.fork(5));
    prisons(&mut city, &mut root.fork(6));
    medical(&mut city, &mut root.fork(7));
    city
}

fn populate(city: &mut City, rng: &mut Rng, target: u64) {
    let mut ids = IdIssuer {
        used: HashSet::with_capacity(target as usize),
    };
    let mut per_county = vec![0u32; COUNTIES.len()];
    while (city.persons.len() as u64) < target {
        let county = pick_county(rng);
        per_county[county as usize] += 1;
        let hh_index = city.households.len() as u32;
        let size = match rng.below(100) {
            0..=14 => 1,
            15..=44 => 2,
            45..=72 => 3,
            73..=89 => 4,
            _ => 5,
        }
        .min((target - city.persons.len() as u64) as usize);
        let head_age = rng.range(22, 90) as i32;
        let head_sex = if rng.chance(0.6) {
            Sex::Male
        } else {
            Sex::Female
        };
        let mut members: Vec<(i32, Sex)> = vec![(head_age, head_sex)];
        if size >= 2 {
            let spouse_sex = if head_sex == Sex::Male {
                Sex::Female
            } else {
                Sex::Male
            };
            members.push((
                (head_age + rng.range(0, 9) as i32 - 4).clamp(20, 95),
                spouse_sex,
            ));
        }
        for _ in 2..size {
            let child_age = head_age - rng.range(22, 36) as i32;
            let sex = if rng.chance(0.5) {
                Sex::Male
            } else {
                Sex::Female
            };
            if child_age >= 0 {
                members.push((child_age, sex));
            } else {
                members.push(((head_age + rng.range(24, 30) as i32).min(98), sex));
            }
        }
        let c = &COUNTIES[county as usize];
        let hh = Household {
            no: format!("{}{:08}", c.code, per_county[county as usize]),
            county,
            subdistrict: rng.below(c.subdistricts.len()) as u8,
            community: rng.below(names::COMMUNITY_STEMS.len()) as u8,
            street: rng.below(names::STREETS.len()) as u8,
            number: rng.range(1, 400) as u16,
            members: Vec::new(),
        };
        city.households.push(hh);
        for (age, sex) in members {
            let birth = birth_for_age(rng, age);
            let id = ids.issue(rng, county, birth, sex);
            let legacy15 = birth.year() < 1980 && birth.year() >= 1900 && rng.chance(0.02);
            let idx = city.persons.len() as u32;
            city.persons.push(Person {
                id,
                sex,
                birth,
                household: hh_index,
                flags: 0,
                legacy15,
                moved_out: None,
                death: None,
            });
            city.households[hh_index as usize].members.push(idx);
        }
    }
    // A few people moved away during the year; they stay in the registry as 迁出.
    for p in city.persons.iter_mut() {
        if rng.chance(0.004) && age(p) >= 18 {
            p.moved_out = Some(date(YEAR, rng.range(1, 13) as u32, rng.range(1, 29) as u32));
        }
    }
}

/// A death and the records of it in each source (at least one).
pub fn record_death(city: &mut City, rng: &mut Rng, person: u32, day: NaiveDate) {
    let mut d = Death {
        person,
        ..Default::default()
    };
    if rng.chance(0.85) {
        d.cremation = Some(day);
    }
    if rng.chance(0.9) {
        d.certificate = Some(day);
    }
    if rng.chance(0.85) || (d.cremation.is_none() && d.certificate.is_none()) {
        d.registry = Some(day);
    }
    city.persons[person as usize].death = Some(city.deaths.len() as u32);
    city.deaths.push(d);
    city.set(person, flag::DEAD);
}

fn deaths(city: &mut City, rng: &mut Rng) {
    for i in 0..city.persons.len() as u32 {
        let p = &city.persons[i as usize];
        if p.moved_out.is_some() {
            continue;
        }
        let a = age(p);
        let p_death = match a {
            80.. => 0.07,
            70..=79 => 0.025,
            60..=69 => 0.01,
            _ => 0.0015,
        };
        if rng.chance(p_death) {
            // Leave the last days of the year out: those deaths are not recorded yet.
            let day = date(YEAR, 1, 1) + Duration::days(rng.range(0, 350) as i64);
            record_death(city, rng, i, day);
        }
    }
}

/// The months of YEAR a person is alive in (through the death month).
pub fn alive_months(city: &City, person: u32) -> Months {
    match city.death_of(person) {
        Some(d) => {
            let m = d.earliest();
            if m.year() < YEAR {
                0
            } else {
                months_between(0, m.month0())
            }
        }
        None => ALL_MONTHS,
    }
}

fn work_and_pensions(city: &mut City, rng: &mut Rng) {
    let employers = (city.persons.len() / 40).max(20);
    for i in 0..employers {
        let county = COUNTIES[i % COUNTIES.len()].code;
        let name = format!(
            "宜昌{}{}",
            names::EMPLOYER_STEMS[i % names::EMPLOYER_STEMS.len()],
            names::EMPLOYER_KINDS[(i / names::EMPLOYER_STEMS.len()) % names::EMPLOYER_KINDS.len()]
        );
        let name = if i >= names::EMPLOYER_STEMS.len() * names::EMPLOYER_KINDS.len() {
            format!(
                "{name}第{}分公司",
                i / (names::EMPLOYER_STEMS.len() * names::EMPLOYER_KINDS.len())
            )
        } else {
            name
        };
        city.employers.push(Employer {
            name,
            credit_code: credit_code(rng, county),
        });
    }
    let death_months: std::collections::HashMap<u32, Months> = city
        .deaths
        .iter()
        .map(|d| (d.person, alive_months(city, d.person)))
        .collect();
    for i in 0..city.persons.len() as u32 {
        let p = &city.persons[i as usize];
        if p.moved_out.is_some() {
            continue;
        }
        let alive = death_months.get(&i).copied().unwrap_or(ALL_MONTHS);
        if alive == 0 {
            continue;
        }
        let county = city.households[p.household as usize].county;
        let a = age(p);
        if retired(p) {
            let enterprise = rng.chance(if is_urban(county) { 0.6 } else { 0.3 });
            let (scheme, cents) = if enterprise {
                (
                    PensionScheme::Enterprise,
                    rng.range(2400, 5200) as i64 * 100,
                )
            } else {
                (PensionScheme::Resident, rng.range(160, 450) as i64 * 100)
            };
            city.pensions.push(Pension {
                person: i,
                scheme,
                cents,
                months: alive,
            });
            city.set(
                i,
                flag::PENSION | if enterprise { flag::ENTERPRISE } else { 0 },
            );
        } else if a >= 18 {
            let draw = rng.below(100);
            if draw < 55 {
                let base = rng.range(3500, 15000) as i64 * 100;
                city.employments.push(Employment {
                    person: i,
                    employer: rng.below(employers) as u32,
                    months: alive,
                    base_cents: base,
                    provident: rng.chance(0.45),
                    taxed: base >= 5000 * 100 || rng.chance(0.3),
                });
                city.set(i, flag::EMPLOYED);
            } else if draw < 58 {
                // Laid off: contributions up to the month before the benefit, maybe a new job
                // from the month after it ends.
                let start = rng.range(1, 9) as u32;
                let end = (start + rng.range(2, 6) as u32).min(11);
                let employer = rng.below(employers) as u32;
                let base = rng.range(3000, 8000) as i64 * 100;
                city.employments.push(Employment {
                    person: i,
                    employer,
                    months: months_between(0, start - 1) & alive,
                    base_cents: base,
                    provident: false,
                    taxed: false,
                });
                city.benefits.push(Benefit {
                    person: i,
                    months: months_between(start, end) & alive,
                    cents: rng.range(1500, 1900) as i64 * 100,
                });
                if end < 11 && rng.chance(0.5) {
                    city.employments.push(Employment {
                        person: i,
                        employer: rng.below(employers) as u32,
                        months: months_between(end + 1, 11) & alive,
                        base_cents: base,
                        provident: false,
                        taxed: false,
                    });
                }
                city.set(i, flag::BENEFIT | flag::EMPLOYED);
            }
        }
    }
}

/// Roughly 2% of households receive dibao: those without work, benefit or an enterprise pension.
fn dibao(city: &mut City, rng: &mut Rng) {
    let mut per_county = vec![0u32; COUNTIES.len()];
    for h in 0..city.households.len() as u32 {
        let hh = &city.households[h as usize];
        let poor = hh.members.iter().all(|&m| {
            let p = &city.persons[m as usize];
            p.flags & (flag::EMPLOYED | flag::BENEFIT | flag::ENTERPRISE) == 0
                && p.moved_out.is_none()
        });
        if !poor || !rng.chance(0.06) {
            continue;
        }
        let members = hh.members.clone();
        let county = hh.county;
        per_county[county as usize] += 1;
        // Covered persons drop the month after a member's death (the civil affairs office was told).
        let mut covered = [members.len() as u8; 12];
        for &m in &members {
            let alive = alive_months(city, m);
            for (k, c) in covered.iter_mut().enumerate() {
                if alive & (1 << k) == 0 {
                    *c -= 1;
                }
            }
        }
        let start_month = if rng.chance(0.2) {
            rng.range(1, 7) as usize
        } else {
            0
        };
        for c in covered.iter_mut().take(start_month) {
            *c = 0;
        }
        let roster_covered = covered[11];
        let start = if start_month > 0 {
            date(YEAR, start_month as u32 + 1, 1)
        } else {
            date(2015 + rng.range(0, 10) as i32, rng.range(1, 13) as u32, 1)
        };
        city.dibao.push(Dibao {
            no: format!(
                "DB{}{:05}",
                COUNTIES[county as usize].code, per_county[county as usize]
            ),
            household: h,
            members: members.clone(),
            roster_covered,
            covered,
            cents_per_person: rng.range(350, 600) as i64 * 100,
            start,
        });
        for m in members {
            city.set(m, flag::DIBAO);
        }
    }
}

fn plate(rng: &mut Rng) -> String {
    const CH: &[u8] = b"0123456789ABCDEFGHJKLMNPQRSTUVWXYZ";
    let mut s = format!("鄂E{}", if rng.chance(0.3) { "D" } else { "" });
    while s.chars().count() < 7 {
        s.push(CH[rng.below(CH.len())] as char);
    }
    s
}

pub fn add_vehicle(
    city: &mut City,
    rng: &mut Rng,
    owner: u32,
    kind: VehicleKind,
    registered: NaiveDate,
    deregistered: Option<NaiveDate>,
) {
    city.vehicles.push(Vehicle {
        plate: plate(rng),
        kind,
        owner,
        registered,
        deregistered,
    });
}

pub fn add_property(
    city: &mut City,
    rng: &mut Rng,
    owner: u32,
    usage: Usage,
    registered: NaiveDate,
) {
    let hh = city.persons[owner as usize].household;
    let base = city.address(hh);
    let location = match usage {
        Usage::Residential => format!(
            "{}{}栋{}单元{}室",
            base.trim_end_matches('号'),
            rng.range(1, 30),
            rng.range(1, 5),
            rng.range(101, 2800)
        ),
        Usage::Commercial => format!("{}商铺{}号", base.trim_end_matches('号'), rng.range(1, 60)),
        Usage::Parking => format!(
            "{}地下车位{}号",
            base.trim_end_matches('号'),
            rng.range(1, 500)
        ),
    };
    let area = match usage {
        Usage::Residential => rng.range(4500, 16000),
        Usage::Commercial => rng.range(2000, 30000),
        Usage::Parking => rng.range(1200, 3000),
    } as i64;
    city.properties.push(Property {
        owner,
        location,
        area_centi: area,
        usage,
        registered,
    });
}

pub fn add_business(
    city: &mut City,
    rng: &mut Rng,
    rep: u32,
    status: BizStatus,
    founded: NaiveDate,
) {
    let county = city.county_of(rep).code;
    let n = city.businesses.len();
    let name = format!(
        "宜昌市{}{}",
        names::COMMUNITY_STEMS[n % names::COMMUNITY_STEMS.len()],
        [
            "商贸有限公司",
            "餐饮店",
            "建材经营部",
            "农业专业合作社",
            "装饰工程有限公司",
            "便利店"
        ][rng.below(6)]
    );
    let name = format!("{name}（{}）", n + 1);
    let credit_code = credit_code(rng, county);
    city.businesses.push(Business {
        name,
        credit_code,
        rep,
        capital_wan_centi: rng.range(1, 500) as i64 * 10_000,
        status,
        founded,
    });
}

fn random_day(rng: &mut Rng, from_year: i32, to_year: i32) -> NaiveDate {
    date(
        rng.range(from_year as u64, to_year as u64 + 1) as i32,
        rng.range(1, 13) as u32,
        rng.range(1, 29) as u32,
    )
}

fn assets(city: &mut City, rng: &mut Rng) {
    for i in 0..city.persons.len() as u32 {
        let p = &city.persons[i as usize];
        if p.flags & flag::DIBAO != 0 || p.moved_out.is_some() {
            continue;
        }
        let a = age(p);
        let is_head = city.households[p.household as usize].members[0] == i;
        if (18..=78).contains(&a) {
            if rng.chance(0.22) {
                let reg = random_day(rng, 2008, 2025).min(date(YEAR, 12, 1));
                add_vehicle(city, rng, i, VehicleKind::Car, reg, None);
            }
            if rng.chance(0.04) {
                let reg = random_day(rng, 2005, 2015);
                let dereg = random_day(rng, 2016, 2024);
                add_vehicle(city, rng, i, VehicleKind::Car, reg, Some(dereg));
            }
            if rng.chance(0.08) {
                let reg = random_day(rng, 2010, 2024);
                add_vehicle(city, rng, i, VehicleKind::Motorcycle, reg, None);
            }
            if rng.chance(0.01) {
                let reg = random_day(rng, 2012, 2024);
                add_vehicle(city, rng, i, VehicleKind::Truck, reg, None);
            }
            if (25..=70).contains(&a) && rng.chance(0.03) {
                let status = match rng.below(20) {
                    0..=16 => BizStatus::Active,
                    17..=18 => BizStatus::Revoked,
                    _ => BizStatus::Cancelled,
                };
                let founded = random_day(rng, 1998, 2024);
                add_business(city, rng, i, status, founded);
            }
        }
        if is_head {
            for (p_own, usage, from) in [
                (0.7, Usage::Residential, 1998),
                (0.1, Usage::Residential, 2005),
                (0.06, Usage::Parking, 2010),
                (0.02, Usage::Commercial, 2005),
            ] {
                if rng.chance(p_own) {
                    let reg = random_day(rng, from, 2024);
                    add_property(city, rng, i, usage, reg);
                }
            }
        }
    }
}

/// Prison terms; a pensioner's pension is suspended as the law says (paid for the month of entry
/// and the month of release, not in between).
fn prisons(city: &mut City, rng: &mut Rng) {
    for i in 0..city.persons.len() as u32 {
        let p = &city.persons[i as usize];
        if p.flags & (flag::DIBAO | flag::DEAD) != 0 || p.moved_out.is_some() {
            continue;
        }
        let a = age(p);
        let rate = if p.flags & flag::PENSION != 0 {
            0.002
        } else {
            0.0008
        };
        if !(18..=80).contains(&a) || !rng.chance(rate) {
            continue;
        }
        let entry = random_day(rng, 2021, YEAR);
        let release = match rng.below(3) {
            0 => None,
            _ => Some(
                (entry + Duration::days(rng.range(120, 1500) as i64)).min(date(YEAR + 3, 6, 30)),
            ),
        };
        city.prisons.push(Prison {
            person: i,
            entry,
            release,
        });
        city.set(i, flag::PRISON);
    }
    let terms: Vec<Prison> = city.prisons.clone();
    suspend(city, &terms);
}

/// Suspend what a prison term stops: pension months strictly between the entry month and the
/// release month (the law pays both of those), and work and benefit while inside.
pub fn suspend(city: &mut City, terms: &[Prison]) {
    let by_person: std::collections::HashMap<u32, (Mon, Mon)> = terms
        .iter()
        .map(|t| (t.person, (mon(t.entry), t.release.map_or(Mon::MAX, mon))))
        .collect();
    let strictly_inside = |person: u32, months: &mut Months| {
        if let Some(&(from, to)) = by_person.get(&person) {
            for k in 0..12u32 {
                let m = mon_of_year(k);
                if m > from && m < to {
                    *months &= !(1 << k);
                }
            }
        }
    };
    for p in city.pensions.iter_mut() {
        strictly_inside(p.person, &mut p.months);
    }
    for e in city.employments.iter_mut() {
        strictly_inside(e.person, &mut e.months);
    }
    for b in city.benefits.iter_mut() {
        strictly_inside(b.person, &mut b.months);
    }
}

fn medical(city: &mut City, rng: &mut Rng) {
    for i in 0..city.persons.len() as u32 {
        let p = &city.persons[i as usize];
        let county = city.households[p.household as usize].county;
        let region = COUNTIES[county as usize].code;
        let end = city.death_of(i).map(|d| d.earliest());
        let employee = p.flags & (flag::EMPLOYED | flag::ENTERPRISE) != 0;
        if employee {
            let start = random_day(rng, 2006, 2024).max(p.birth + Duration::days(18 * 366));
            city.enrolments.push(Enrolment {
                person: i,
                scheme: MedScheme::Employee,
                region,
                start,
                end,
            });
        } else {
            let start = date(2017, 1, 1).max(p.birth);
            city.enrolments.push(Enrolment {
                person: i,
                scheme: MedScheme::UrbanRural,
                region,
                start,
                end,
            });
            if !is_urban(county) && p.birth.year() < 2010 && rng.chance(0.4) {
                for year in 2014..=2016 {
                    if p.birth.year() <= year {
                        city.rural_coop.push(RuralCoop {
                            person: i,
                            year,
                            county,
                        });
                    }
                }
            }
        }
    }
}
