//! Planted cases and near misses for every rule of rules.md. Planting only creates situations;
//! the oracle decides what is a hit, so the truth never depends on bookkeeping here.

use std::collections::{BTreeMap, HashSet};

use chrono::{Datelike, Duration};

use crate::background::{
    add_business, add_property, add_vehicle, alive_months, record_death, suspend,
};
use crate::city::*;
use crate::names::COUNTIES;
use crate::rng::Rng;
use crate::truth::{Application, Truth};

/// The dibao line (yuan per person per month) the city is planted against: rules.md's default.
pub const DIBAO_LINE_CENTS: i64 = 800 * 100;

struct Planter<'a> {
    city: &'a mut City,
    rng: Rng,
    truth: &'a mut Truth,
    planted_dibao: HashSet<usize>,
}

impl Planter<'_> {
    /// A random person who satisfies `pred` and is in no other planted case.
    fn find(&mut self, pred: impl Fn(&City, u32) -> bool) -> Option<u32> {
        let n = self.city.persons.len() as u32;
        let start = self.rng.range(0, u64::from(n)) as u32;
        (0..n).map(|i| (start + i) % n).find(|&i| {
            let p = &self.city.persons[i as usize];
            p.flags & flag::PLANTED == 0 && p.moved_out.is_none() && pred(self.city, i)
        })
    }

    fn claim(&mut self, person: u32) -> String {
        self.city.set(person, flag::PLANTED);
        self.city.persons[person as usize].id.to_string()
    }

    fn find_dibao(&mut self, min_members: usize) -> Option<usize> {
        let n = self.city.dibao.len();
        if n == 0 {
            return None;
        }
        let start = self.rng.below(n);
        let found = (0..n).map(|i| (start + i) % n).find(|&i| {
            let d = &self.city.dibao[i];
            !self.planted_dibao.contains(&i)
                && d.roster_covered as usize == d.members.len()
                && d.members.len() >= min_members
                && d.covered.iter().all(|&c| c as usize == d.members.len())
                && d.members.iter().all(|&m| {
                    self.city.persons[m as usize].flags & (flag::PLANTED | flag::DEAD) == 0
                })
        })?;
        self.planted_dibao.insert(found);
        for m in self.city.dibao[found].members.clone() {
            self.city.set(m, flag::PLANTED);
        }
        Some(found)
    }
}

fn lone_pensioner(scheme: PensionScheme) -> impl Fn(&City, u32) -> bool {
    move |c: &City, i: u32| {
        let p = &c.persons[i as usize];
        let want = if scheme == PensionScheme::Enterprise {
            flag::ENTERPRISE
        } else {
            0
        };
        p.flags & (flag::PENSION | flag::ENTERPRISE) == flag::PENSION | want
            && p.flags & (flag::DEAD | flag::PRISON | flag::DIBAO) == 0
    }
}

pub fn plant(city: &mut City, seed: u64, truth: &mut Truth) {
    let per_rule = (city.persons.len() / 2000).max(4);
    let mut p = Planter {
        city,
        rng: Rng::new(seed).fork(99),
        truth,
        planted_dibao: HashSet::new(),
    };
    r1_deceased_pensioners(&mut p, per_rule);
    r2_duplicate_insurance(&mut p, per_rule);
    r3_benefit_while_employed(&mut p, per_rule);
    r4_pension_in_prison(&mut p, per_rule);
    r5_dibao_assets(&mut p, per_rule);
    r6_two_pensions(&mut p, per_rule);
    r7_dibao_deceased_member(&mut p, per_rule);
    mixed_applications(&mut p, 3);
}

/// Households that apply with members who cannot be counted as given: the applicant's own
/// family, plus one who died, one who moved away, one already on another dibao roster and one
/// ID the registry has never seen. (No data is changed: they are found among what exists.)
fn mixed_applications(p: &mut Planter, n: usize) {
    let city = &*p.city;
    let regular = |i: u32| {
        let person = &city.persons[i as usize];
        person.death.is_none()
            && person.moved_out.is_none()
            && person.flags & (flag::DIBAO | flag::DEAD) == 0
    };
    let dibao_members: Vec<u32> = city
        .dibao
        .iter()
        .flat_map(|d| d.members.iter().copied())
        .filter(|&m| {
            city.persons[m as usize].death.is_none() && city.persons[m as usize].moved_out.is_none()
        })
        .collect();
    let deceased: Vec<u32> = (0..city.persons.len() as u32)
        .filter(|&i| city.death_of(i).is_some_and(|d| d.registry.is_some()))
        .collect();
    let moved: Vec<u32> = (0..city.persons.len() as u32)
        .filter(|&i| {
            city.persons[i as usize].moved_out.is_some() && city.persons[i as usize].death.is_none()
        })
        .collect();
    let known: HashSet<String> = city.persons.iter().map(|x| x.id.to_string()).collect();
    let mut apps = Vec::new();
    let start = p.rng.below(city.households.len().max(1));
    let mut households = (0..city.households.len()).map(|i| (start + i) % city.households.len());
    for k in 0..n {
        let (Some(h), Some(&dead), Some(&away), Some(&other)) = (
            households.find(|&h| {
                let m = &city.households[h].members;
                !m.is_empty() && m.len() <= 4 && m.iter().all(|&i| regular(i))
            }),
            deceased.get(k),
            moved.get(k),
            dibao_members.get(k * 3),
        ) else {
            break;
        };
        let family: Vec<String> = city.households[h]
            .members
            .iter()
            .map(|&i| city.persons[i as usize].id.to_string())
            .collect();
        let stranger = (0u16..)
            .map(|seq| {
                hedui_model::ResidentId::from_parts(
                    "110105",
                    date(1980, 1 + k as u32, 15),
                    100 + seq,
                )
                .as_str()
                .to_string()
            })
            .find(|id| !known.contains(id))
            .expect("an unused number");
        let id = |i: u32| city.persons[i as usize].id.to_string();
        let irregular = BTreeMap::from([
            (id(dead), "deceased".to_string()),
            (id(away), "moved_out".to_string()),
            (id(other), "other_roster".to_string()),
            (stranger.clone(), "unregistered".to_string()),
        ]);
        let mut members = family.clone();
        members.extend([id(dead), id(away), id(other), stranger]);
        apps.push(Application {
            members,
            counted: family,
            irregular,
        });
    }
    p.truth.applications.extend(apps);
}

fn r1_deceased_pensioners(p: &mut Planter, n: usize) {
    let pensions = index_by(&p.city.pensions, |x| x.person);
    for i in 0..n {
        let Some(who) = p.find(lone_pensioner(if i % 2 == 0 {
            PensionScheme::Enterprise
        } else {
            PensionScheme::Resident
        })) else {
            break;
        };
        p.claim(who);
        let day = date(YEAR, 1, 1) + Duration::days(p.rng.range(0, 240) as i64);
        record_death(p.city, &mut p.rng, who, day);
        let d = p.city.deaths.last_mut().expect("just recorded");
        // Every third case: the sources disagree by more than 30 days.
        if i % 3 == 0 {
            d.cremation = Some(day);
            d.certificate = Some(day + Duration::days(45));
            d.registry = None;
        }
        // Paid on for some months after death, sometimes until today.
        let extra = p.rng.range(1, 7) as u32;
        let paid = months_between(0, (day.month0() + extra).min(11));
        for &k in pensions.get(&who).into_iter().flatten() {
            p.city.pensions[k].months = paid;
        }
    }
    // Near misses: paid for the death month itself, and not after.
    for _ in 0..n {
        let Some(who) = p.find(lone_pensioner(PensionScheme::Enterprise)) else {
            break;
        };
        let id = p.claim(who);
        let day = date(YEAR, p.rng.range(2, 12) as u32, p.rng.range(1, 28) as u32);
        record_death(p.city, &mut p.rng, who, day);
        for &k in pensions.get(&who).into_iter().flatten() {
            p.city.pensions[k].months = months_between(0, day.month0());
        }
        p.truth.decoy(
            "R1",
            &id,
            "pension paid for the death month itself, none after",
        );
    }
}

fn r2_duplicate_insurance(p: &mut Planter, n: usize) {
    let enrol = index_by(&p.city.enrolments, |e| e.person);
    let index = &enrol;
    let alive_single = |scheme: MedScheme| {
        move |c: &City, i: u32| {
            let enrol = index;
            c.persons[i as usize].flags & (flag::DEAD | flag::PRISON) == 0
                && enrol.get(&i).is_some_and(|v| {
                    v.len() == 1
                        && c.enrolments[v[0]].scheme == scheme
                        && c.enrolments[v[0]].end.is_none()
                })
        }
    };
    for i in 0..n {
        match i % 3 {
            0 => {
                // Employee insurance kept while also enrolled as an urban-rural resident.
                let Some(who) = p.find(alive_single(MedScheme::Employee)) else {
                    continue;
                };
                p.claim(who);
                let region = p.city.county_of(who).code;
                let start = date(YEAR, p.rng.range(1, 6) as u32, p.rng.range(2, 28) as u32);
                let end = start + Duration::days(p.rng.range(70, 200) as i64);
                p.city.enrolments.push(Enrolment {
                    person: who,
                    scheme: MedScheme::UrbanRural,
                    region,
                    start,
                    end: Some(end),
                });
            }
            1 => {
                // The same scheme in two counties: moved house and enrolled again.
                let Some(who) = p.find(alive_single(MedScheme::UrbanRural)) else {
                    continue;
                };
                p.claim(who);
                let home = p.city.county_of(who).code;
                let other = COUNTIES
                    .iter()
                    .map(|c| c.code)
                    .find(|c| *c != home)
                    .expect("several counties");
                let start = date(YEAR, p.rng.range(2, 9) as u32, 1);
                p.city.enrolments.push(Enrolment {
                    person: who,
                    scheme: MedScheme::UrbanRural,
                    region: other,
                    start,
                    end: None,
                });
            }
            _ => {
                // Older data: rural cooperative scheme while already insured as an employee.
                let Some(who) = p.find(alive_single(MedScheme::Employee)) else {
                    continue;
                };
                p.claim(who);
                let k = enrol[&who][0];
                p.city.enrolments[k].start = p.city.enrolments[k].start.min(date(2012, 3, 1));
                let county = p.city.persons[who as usize].household;
                let county = p.city.households[county as usize].county;
                p.city.rural_coop.push(RuralCoop {
                    person: who,
                    year: 2015,
                    county,
                });
            }
        }
    }
    for i in 0..n {
        let Some(who) = p.find(alive_single(MedScheme::Employee)) else {
            break;
        };
        let id = p.claim(who);
        let k = enrol[&who][0];
        let region = p.city.enrolments[k].region;
        if i % 2 == 0 {
            let switch = date(YEAR, p.rng.range(2, 11) as u32, 1);
            p.city.enrolments[k].end = Some(switch.pred_opt().expect("valid"));
            p.city.enrolments.push(Enrolment {
                person: who,
                scheme: MedScheme::UrbanRural,
                region,
                start: switch,
                end: None,
            });
            p.truth.decoy(
                "R2",
                &id,
                "employee insurance ended the day before resident insurance started",
            );
        } else {
            let m = p.rng.range(1, 12) as u32;
            let start = date(YEAR, m, 5);
            p.city.enrolments.push(Enrolment {
                person: who,
                scheme: MedScheme::UrbanRural,
                region,
                start,
                end: Some(date(YEAR, m, 26)),
            });
            p.truth.decoy(
                "R2",
                &id,
                "second enrolment overlaps for less than one full calendar month",
            );
        }
    }
}

fn r3_benefit_while_employed(p: &mut Planter, n: usize) {
    let benefits = index_by(&p.city.benefits, |b| b.person);
    let candidate = |c: &City, i: u32| {
        c.persons[i as usize].flags & (flag::DEAD | flag::PRISON) == 0
            && c.persons[i as usize].flags & flag::BENEFIT != 0
            && benefits
                .get(&i)
                .is_some_and(|v| c.benefits[v[0]].months.count_ones() >= 2)
    };
    let employers = p.city.employers.len();
    for _ in 0..n {
        let Some(who) = p.find(candidate) else { break };
        p.claim(who);
        let months = p.city.benefits[benefits[&who][0]].months;
        let first = months.trailing_zeros();
        let employer = p.rng.below(employers) as u32;
        p.city.employments.push(Employment {
            person: who,
            employer,
            months: months_between(first, first + 1) & months,
            base_cents: p.rng.range(3000, 6000) as i64 * 100,
            provident: false,
            taxed: false,
        });
    }
    for _ in 0..n {
        let Some(who) = p.find(candidate) else { break };
        let id = p.claim(who);
        p.truth.decoy("R3", &id, "contributions stop the month before the benefit starts; a new job starts after it ends");
    }
}

fn r4_pension_in_prison(p: &mut Planter, n: usize) {
    let mut suspended = Vec::new();
    for i in 0..(2 * n) {
        let Some(who) = p.find(lone_pensioner(PensionScheme::Enterprise)) else {
            break;
        };
        let id = p.claim(who);
        p.city.set(who, flag::PRISON);
        let entry =
            date(YEAR, p.rng.range(1, 5) as u32, p.rng.range(1, 28) as u32) - Duration::days(60);
        let release = match i % 3 {
            0 => None,
            _ => Some(date(
                YEAR,
                p.rng.range(8, 12) as u32,
                p.rng.range(1, 28) as u32,
            )),
        };
        let term = Prison {
            person: who,
            entry,
            release,
        };
        p.city.prisons.push(term.clone());
        if i >= n {
            // Near miss: the pension was suspended as it should be.
            suspended.push(term);
            p.truth.decoy(
                "R4",
                &id,
                "pension paid only for the entry and release months, suspended in between",
            );
        }
    }
    // And a pensioner released before the year began.
    for _ in 0..n.div_ceil(2) {
        let Some(who) = p.find(lone_pensioner(PensionScheme::Resident)) else {
            break;
        };
        let id = p.claim(who);
        p.city.set(who, flag::PRISON);
        p.city.prisons.push(Prison {
            person: who,
            entry: date(YEAR - 3, 3, 10),
            release: Some(date(YEAR - 1, 11, 20)),
        });
        p.truth.decoy("R4", &id, "released before the months paid");
    }
    suspend(p.city, &suspended);
}

fn r5_dibao_assets(p: &mut Planter, n: usize) {
    let line = DIBAO_LINE_CENTS;
    let pensions = index_by(&p.city.pensions, |x| x.person);
    for i in 0..n {
        let Some(h) = p.find_dibao(1) else { break };
        let member = p.city.dibao[h].members[p.rng.below(p.city.dibao[h].members.len())];
        match i % 4 {
            0 => add_vehicle(
                p.city,
                &mut p.rng,
                member,
                VehicleKind::Car,
                date(2021, 4, 18),
                None,
            ),
            1 => {
                add_property(
                    p.city,
                    &mut p.rng,
                    member,
                    Usage::Residential,
                    date(2016, 8, 2),
                );
                add_property(
                    p.city,
                    &mut p.rng,
                    member,
                    Usage::Residential,
                    date(2022, 5, 9),
                );
            }
            // Some businesses were founded inside the year: an asset only from that month.
            2 => {
                let founded = if p.rng.chance(0.5) {
                    date(YEAR, 3 + p.rng.below(8) as u32, 1 + p.rng.below(28) as u32)
                } else {
                    date(2019, 6, 18)
                };
                add_business(p.city, &mut p.rng, member, BizStatus::Active, founded)
            }
            _ => {
                let size = i64::from(p.city.dibao[h].roster_covered);
                p.city.extra_provident.push(IncomeLine {
                    person: member,
                    months: months_between(3, 11),
                    cents: line * size + 20_000,
                });
            }
        }
    }
    for i in 0..n {
        let Some(h) = p.find_dibao(1) else { break };
        let no = p.city.dibao[h].no.clone();
        let member = p.city.dibao[h].members[0];
        match i % 4 {
            0 => {
                add_vehicle(
                    p.city,
                    &mut p.rng,
                    member,
                    VehicleKind::Motorcycle,
                    date(2019, 6, 1),
                    None,
                );
                add_vehicle(
                    p.city,
                    &mut p.rng,
                    member,
                    VehicleKind::ThreeWheeler,
                    date(2020, 9, 1),
                    None,
                );
                p.truth.decoy(
                    "R5",
                    &no,
                    "member owns a motorcycle and a three-wheeler (exempt)",
                );
            }
            1 => {
                add_vehicle(
                    p.city,
                    &mut p.rng,
                    member,
                    VehicleKind::Car,
                    date(2012, 6, 1),
                    Some(date(2023, 3, 15)),
                );
                add_property(
                    p.city,
                    &mut p.rng,
                    member,
                    Usage::Residential,
                    date(2010, 1, 5),
                );
                add_property(p.city, &mut p.rng, member, Usage::Parking, date(2015, 1, 5));
                p.truth.decoy(
                    "R5",
                    &no,
                    "car deregistered in 2023; one home and a parking space",
                );
            }
            2 => {
                add_business(
                    p.city,
                    &mut p.rng,
                    member,
                    BizStatus::Revoked,
                    date(2018, 2, 6),
                );
                p.truth.decoy(
                    "R5",
                    &no,
                    "member was legal representative of a business whose licence was revoked",
                );
            }
            _ => {
                // Income just under the line: the existing pensions plus a provident base.
                let d = &p.city.dibao[h];
                let size = i64::from(d.roster_covered);
                let existing: i64 = d
                    .members
                    .iter()
                    .flat_map(|m| pensions.get(m).into_iter().flatten())
                    .map(|&k| p.city.pensions[k].cents)
                    .sum();
                let base = line * size - existing - 1_000;
                if base > 0 {
                    p.city.extra_provident.push(IncomeLine {
                        person: member,
                        months: months_between(0, 11),
                        cents: base,
                    });
                    p.truth
                        .decoy("R5", &no, "per-capita income 10 yuan under the dibao line");
                }
            }
        }
    }
}

fn r6_two_pensions(p: &mut Planter, n: usize) {
    let pensions = index_by(&p.city.pensions, |x| x.person);
    for i in 0..(2 * n) {
        let Some(who) = p.find(lone_pensioner(PensionScheme::Resident)) else {
            break;
        };
        let id = p.claim(who);
        let from = p.rng.range(0, 9) as u32;
        if i < n {
            p.city.pensions.push(Pension {
                person: who,
                scheme: PensionScheme::Enterprise,
                cents: p.rng.range(2600, 4000) as i64 * 100,
                months: months_between(from, 11),
            });
        } else {
            // Near miss: switched from the resident scheme to the enterprise one.
            let from = from.max(1);
            for &k in pensions.get(&who).into_iter().flatten() {
                p.city.pensions[k].months = months_between(0, from - 1);
            }
            p.city.pensions.push(Pension {
                person: who,
                scheme: PensionScheme::Enterprise,
                cents: p.rng.range(2600, 4000) as i64 * 100,
                months: months_between(from, 11),
            });
            p.truth.decoy(
                "R6",
                &id,
                "resident pension ends the month before the enterprise pension starts",
            );
        }
    }
}

fn r7_dibao_deceased_member(p: &mut Planter, n: usize) {
    let pensions = index_by(&p.city.pensions, |x| x.person);
    for i in 0..(2 * n) {
        let Some(h) = p.find_dibao(2) else { break };
        let members = p.city.dibao[h].members.clone();
        let who = members[1 + p.rng.below(members.len() - 1)];
        let day = date(YEAR, p.rng.range(1, 10) as u32, p.rng.range(1, 28) as u32);
        record_death(p.city, &mut p.rng, who, day);
        let alive = alive_months(p.city, who);
        for &k in pensions.get(&who).into_iter().flatten() {
            p.city.pensions[k].months &= alive;
        }
        if i >= n {
            // Near miss: the household size was reduced from the month after the death.
            let d = &mut p.city.dibao[h];
            for k in (day.month0() as usize + 1)..12 {
                d.covered[k] -= 1;
            }
            d.roster_covered -= 1;
            let no = d.no.clone();
            p.truth.decoy(
                "R7",
                &no,
                "household size reduced from the month after the member's death",
            );
        }
    }
}
