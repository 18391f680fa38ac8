//! The truth: rules.md applied directly to the city model, independently of the hub's SQL.
//! Planting makes the situations; this decides which of them (and of anything in the background)
//! are hits, so `truth.json` is right even where planting and background meet.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::NaiveDate;

use crate::city::*;
use crate::plant::DIBAO_LINE_CENTS;
use crate::truth::{Hit, Truth};

fn months_list(set: &BTreeSet<Mon>) -> Vec<String> {
    set.iter().map(|m| fmt_mon(*m)).collect()
}

fn hit(
    rule: &str,
    subject: String,
    months: &BTreeSet<Mon>,
    cents: Option<i64>,
    note: String,
) -> Hit {
    Hit {
        rule: rule.into(),
        subject,
        months: months_list(months),
        amount: cents.map(yuan),
        note,
    }
}

/// The last day any enrolment is considered open to: the end of the ledgers' year.
fn period_end() -> NaiveDate {
    date(YEAR, 12, 31)
}

pub fn evaluate(city: &City, truth: &mut Truth) {
    let mut hits = Vec::new();
    r1(city, &mut hits);
    r2(city, &mut hits);
    r3(city, &mut hits);
    r4(city, &mut hits);
    r5(city, &mut hits);
    r6(city, &mut hits);
    r7(city, &mut hits);
    hits.sort();
    for h in hits {
        truth.hit(h);
    }
    // A decoy must never be a hit: if planting and the background met, the decoy goes.
    for rule in truth.rules.values_mut() {
        let subjects: HashSet<String> = rule.hits.iter().map(|h| h.subject.clone()).collect();
        rule.decoys.retain(|d| !subjects.contains(&d.subject));
        rule.decoys.sort();
    }
}

fn id(city: &City, person: u32) -> String {
    city.persons[person as usize].id.to_string()
}

fn r1(city: &City, hits: &mut Vec<Hit>) {
    let pensions = index_by(&city.pensions, |p| p.person);
    for d in &city.deaths {
        let death_month = mon(d.earliest());
        let mut months = BTreeSet::new();
        let mut cents = 0;
        for &k in pensions.get(&d.person).into_iter().flatten() {
            let p = &city.pensions[k];
            for m in 0..12u32 {
                if p.months & (1 << m) != 0 && mon_of_year(m) > death_month {
                    months.insert(mon_of_year(m));
                    cents += p.cents;
                }
            }
        }
        if !months.is_empty() {
            let dates: Vec<NaiveDate> = [d.cremation, d.certificate, d.registry]
                .into_iter()
                .flatten()
                .collect();
            let conflict = dates
                .iter()
                .any(|a| dates.iter().any(|b| (*a - *b).num_days().abs() > 30));
            let note = format!(
                "death month {}{}",
                fmt_mon(death_month),
                if conflict {
                    "; death sources disagree by more than 30 days"
                } else {
                    ""
                }
            );
            hits.push(hit("R1", id(city, d.person), &months, Some(cents), note));
        }
    }
}

struct Span {
    scheme: &'static str,
    region: String,
    start: NaiveDate,
    end: NaiveDate,
}

fn r2(city: &City, hits: &mut Vec<Hit>) {
    let mut spans: HashMap<u32, Vec<Span>> = HashMap::new();
    for e in &city.enrolments {
        let scheme = match e.scheme {
            MedScheme::Employee => "employee_medical",
            MedScheme::UrbanResident => "urban_resident_medical",
            MedScheme::UrbanRural => "urban_rural_resident_medical",
        };
        spans.entry(e.person).or_default().push(Span {
            scheme,
            region: e.region.to_string(),
            start: e.start,
            end: e.end.unwrap_or(period_end()).min(period_end()),
        });
    }
    for r in &city.rural_coop {
        spans.entry(r.person).or_default().push(Span {
            scheme: "rural_coop_medical",
            region: crate::names::COUNTIES[r.county as usize].name.to_string(),
            start: date(r.year, 1, 1),
            end: date(r.year, 12, 31),
        });
    }
    let mut persons: Vec<&u32> = spans.keys().collect();
    persons.sort();
    for person in persons {
        let s = &spans[person];
        let mut months = BTreeSet::new();
        for (i, a) in s.iter().enumerate() {
            for b in &s[i + 1..] {
                if a.scheme == b.scheme && a.region == b.region {
                    continue;
                }
                let (from, to) = (a.start.max(b.start), a.end.min(b.end));
                if from > to {
                    continue;
                }
                for m in mon(from)..=mon(to) {
                    if first_day(m) >= from && last_day(m) <= to {
                        months.insert(m);
                    }
                }
            }
        }
        if !months.is_empty() {
            hits.push(hit(
                "R2",
                id(city, *person),
                &months,
                None,
                "two basic medical insurance enrolments at once".into(),
            ));
        }
    }
}

fn r3(city: &City, hits: &mut Vec<Hit>) {
    let mut worked: HashMap<u32, Months> = HashMap::new();
    for e in &city.employments {
        *worked.entry(e.person).or_default() |= e.months;
    }
    for b in &city.benefits {
        let both = b.months & worked.get(&b.person).copied().unwrap_or(0);
        if both != 0 {
            let months: BTreeSet<Mon> = (0..12u32)
                .filter(|k| both & (1 << k) != 0)
                .map(mon_of_year)
                .collect();
            let cents = b.cents * i64::from(both.count_ones());
            hits.push(hit(
                "R3",
                id(city, b.person),
                &months,
                Some(cents),
                "unemployment benefit paid while contributions were paid".into(),
            ));
        }
    }
}

fn r4(city: &City, hits: &mut Vec<Hit>) {
    let pensions = index_by(&city.pensions, |p| p.person);
    let mut per_person: BTreeMap<u32, (BTreeSet<Mon>, i64)> = BTreeMap::new();
    for t in &city.prisons {
        let (from, to) = (mon(t.entry), t.release.map_or(Mon::MAX, mon));
        for &k in pensions.get(&t.person).into_iter().flatten() {
            let p = &city.pensions[k];
            for m in 0..12u32 {
                let month = mon_of_year(m);
                if p.months & (1 << m) != 0 && month > from && month < to {
                    let e = per_person.entry(t.person).or_default();
                    if e.0.insert(month) {
                        e.1 += p.cents;
                    }
                }
            }
        }
    }
    for (person, (months, cents)) in per_person {
        hits.push(hit(
            "R4",
            id(city, person),
            &months,
            Some(cents),
            "pension paid while serving a prison sentence".into(),
        ));
    }
}

/// Income of a person in month k of YEAR, in cents: taxable income, pension, unemployment benefit
/// and provident-fund base (rules.md R5).
struct Incomes(HashMap<u32, [i64; 12]>);

impl Incomes {
    fn of(city: &City, members: &HashSet<u32>) -> Incomes {
        let mut m: HashMap<u32, [i64; 12]> = HashMap::new();
        let mut add = |person: u32, months: Months, cents: i64| {
            if members.contains(&person) {
                let e = m.entry(person).or_insert([0; 12]);
                for (k, v) in e.iter_mut().enumerate() {
                    if months & (1 << k) != 0 {
                        *v += cents;
                    }
                }
            }
        };
        for e in &city.employments {
            if e.taxed {
                add(e.person, e.months, e.base_cents);
            }
            if e.provident {
                add(e.person, e.months, e.base_cents);
            }
        }
        for x in city.extra_tax.iter().chain(&city.extra_provident) {
            add(x.person, x.months, x.cents);
        }
        for p in &city.pensions {
            add(p.person, p.months, p.cents);
        }
        for b in &city.benefits {
            add(b.person, b.months, b.cents);
        }
        Incomes(m)
    }

    fn get(&self, person: u32, k: usize) -> i64 {
        self.0.get(&person).map_or(0, |v| v[k])
    }
}

fn r5(city: &City, hits: &mut Vec<Hit>) {
    let members: HashSet<u32> = city
        .dibao
        .iter()
        .flat_map(|d| d.members.iter().copied())
        .collect();
    let incomes = Incomes::of(city, &members);
    let vehicles = index_by(&city.vehicles, |v| v.owner);
    let properties = index_by(&city.properties, |p| p.owner);
    let businesses = index_by(&city.businesses, |b| b.rep);
    for d in &city.dibao {
        let mut months = BTreeSet::new();
        let mut cents = 0;
        let mut items = BTreeSet::new();
        for k in 0..12usize {
            if d.covered[k] == 0 || d.roster_covered == 0 {
                continue;
            }
            let m = mon_of_year(k as u32);
            let (first, last) = (first_day(m), last_day(m));
            let mut bad = false;
            for &member in &d.members {
                for &v in vehicles.get(&member).into_iter().flatten() {
                    let v = &city.vehicles[v];
                    if v.kind == VehicleKind::Car
                        && v.registered <= last
                        && v.deregistered.is_none_or(|x| x >= first)
                    {
                        bad = true;
                        items.insert("vehicle");
                    }
                }
                let homes = properties
                    .get(&member)
                    .into_iter()
                    .flatten()
                    .filter(|&&p| {
                        city.properties[p].usage == Usage::Residential
                            && city.properties[p].registered <= last
                    })
                    .count();
                if homes > 1 {
                    bad = true;
                    items.insert("properties");
                }
                if businesses.get(&member).into_iter().flatten().any(|&b| {
                    city.businesses[b].status == BizStatus::Active
                        && city.businesses[b].founded <= last
                }) {
                    bad = true;
                    items.insert("business");
                }
            }
            let income: i64 = d.members.iter().map(|&x| incomes.get(x, k)).sum();
            if income > DIBAO_LINE_CENTS * i64::from(d.roster_covered) {
                bad = true;
                items.insert("income");
            }
            if bad {
                months.insert(m);
                cents += d.payment_cents(k);
            }
        }
        if !months.is_empty() {
            let note = items.into_iter().collect::<Vec<_>>().join(", ");
            hits.push(hit("R5", d.no.clone(), &months, Some(cents), note));
        }
    }
}

fn r6(city: &City, hits: &mut Vec<Hit>) {
    let mut by_person: BTreeMap<u32, (Months, Months, i64)> = BTreeMap::new();
    for p in &city.pensions {
        let e = by_person.entry(p.person).or_default();
        match p.scheme {
            PensionScheme::Enterprise => e.0 |= p.months,
            PensionScheme::Resident => {
                e.1 |= p.months;
                e.2 = p.cents;
            }
        }
    }
    for (person, (ent, res, res_cents)) in by_person {
        let both = ent & res;
        if both != 0 {
            let months: BTreeSet<Mon> = (0..12u32)
                .filter(|k| both & (1 << k) != 0)
                .map(mon_of_year)
                .collect();
            let cents = res_cents * i64::from(both.count_ones());
            hits.push(hit(
                "R6",
                id(city, person),
                &months,
                Some(cents),
                "enterprise and resident pension for the same month".into(),
            ));
        }
    }
}

fn r7(city: &City, hits: &mut Vec<Hit>) {
    for d in &city.dibao {
        let death_months: Vec<Option<Mon>> = d
            .members
            .iter()
            .map(|&m| city.death_of(m).map(|x| mon(x.earliest())))
            .collect();
        let mut months = BTreeSet::new();
        let mut cents = 0;
        for k in 0..12usize {
            if d.covered[k] == 0 {
                continue;
            }
            let m = mon_of_year(k as u32);
            let dead_before = death_months
                .iter()
                .filter(|x| x.is_some_and(|dm| dm < m))
                .count();
            let living = d.members.len() - dead_before;
            let covered = d.covered[k] as i64;
            if dead_before > 0 && covered as usize > living {
                months.insert(m);
                // The share paid for the persons no longer living, rounded half up to the fen.
                let excess = covered - living as i64;
                cents += (d.payment_cents(k) * excess * 2 + covered) / (2 * covered);
            }
        }
        if !months.is_empty() {
            hits.push(hit(
                "R7",
                d.no.clone(),
                &months,
                Some(cents),
                "dibao paid for a member after the member's death".into(),
            ));
        }
    }
}
