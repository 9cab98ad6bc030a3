//! Grid groups (issue 15): named sets of an organisation's devices — listed one by one, or every
//! device of a listed building — whose total draw is limited, possibly nested (sites inside a
//! feeder). A group's limit is its default `power_limit_w` (none: no limit of its own) unless a
//! window of its `schedule` covers the moment (a §14a EnWG dimming signal, a feeder's evening
//! cap); where windows overlap, the lowest limit holds.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::validation::{FieldError, LocPart};

/// At most this many windows per schedule: a year of daily windows fits.
pub const MAX_SCHEDULE_WINDOWS: usize = 1000;
/// At most this many directly listed members of each kind.
pub const MAX_MEMBERS: usize = 10_000;
/// 1 GW: above any feeder; a larger figure is a typo (kW for W is 1000 × too small, not large).
pub const MAX_POWER_LIMIT_W: i64 = 1_000_000_000;

/// A grid group as the partner defines it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridGroup {
    pub name: String,
    /// The group this one sits inside (a site inside a feeder).
    pub parent_id: Option<Uuid>,
    /// Every live electric vehicle linked to one of these buildings is a member.
    #[serde(default)]
    pub building_ids: Vec<Uuid>,
    /// Electric vehicles listed one by one.
    #[serde(default)]
    pub electric_vehicle_ids: Vec<Uuid>,
    pub power_limit_w: Option<i64>,
    #[serde(default)]
    pub schedule: Vec<LimitWindow>,
}

/// `[start, end)` at most `power_limit_w`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LimitWindow {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub power_limit_w: i64,
}

impl GridGroup {
    /// The lowest limit that holds anywhere in `[start, end)`, W (`None`: unlimited).
    pub fn limit_w(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> Option<i64> {
        self.schedule
            .iter()
            .filter(|w| w.start < end && start < w.end)
            .map(|w| w.power_limit_w)
            .chain(self.power_limit_w)
            .min()
    }

    /// Field rules of one group on its own (the tree is [`check_tree`]'s).
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let name = self.name.trim();
        if name.is_empty() || self.name.chars().count() > 100 {
            errors.push(FieldError::body(
                "name",
                "value_error",
                "1 to 100 characters, not only spaces",
            ));
        }
        if let Some(w) = self.power_limit_w {
            check_power(&mut errors, vec!["body".into(), "power_limit_w".into()], w);
        }
        errors.extend(validate_schedule(&self.schedule, &["body", "schedule"]));
        for (key, ids) in [
            ("building_ids", &self.building_ids),
            ("electric_vehicle_ids", &self.electric_vehicle_ids),
        ] {
            if ids.len() > MAX_MEMBERS {
                errors.push(FieldError::body(
                    key,
                    "value_error",
                    format!("at most {MAX_MEMBERS} entries"),
                ));
            }
            let mut seen = std::collections::HashSet::new();
            for (i, id) in ids.iter().enumerate() {
                if !seen.insert(id) {
                    errors.push(FieldError::new(
                        vec!["body".into(), key.into(), i.into()],
                        "value_error",
                        "listed twice",
                    ));
                }
            }
        }
        errors
    }
}

fn check_power(errors: &mut Vec<FieldError>, loc: Vec<LocPart>, w: i64) {
    if !(0..=MAX_POWER_LIMIT_W).contains(&w) {
        errors.push(FieldError::new(
            loc,
            "value_error",
            format!("a power in watts from 0 to {MAX_POWER_LIMIT_W}"),
        ));
    }
}

/// A schedule's rules: each window non-empty with a plausible limit, no two overlapping, at most
/// [`MAX_SCHEDULE_WINDOWS`]. `at` is where the list sits in the request.
pub fn validate_schedule(schedule: &[LimitWindow], at: &[&str]) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let loc = |i: usize, field: &str| {
        let mut loc: Vec<LocPart> = at.iter().map(|p| LocPart::from(*p)).collect();
        loc.push(i.into());
        loc.push(field.into());
        loc
    };
    if schedule.len() > MAX_SCHEDULE_WINDOWS {
        errors.push(FieldError::at(
            at,
            "value_error",
            format!("at most {MAX_SCHEDULE_WINDOWS} windows"),
        ));
        return errors;
    }
    for (i, w) in schedule.iter().enumerate() {
        if w.end <= w.start {
            errors.push(FieldError::new(
                loc(i, "end"),
                "value_error",
                "must be after start",
            ));
        }
        check_power(&mut errors, loc(i, "power_limit_w"), w.power_limit_w);
    }
    let mut order: Vec<usize> = (0..schedule.len()).collect();
    order.sort_by_key(|&i| (schedule[i].start, i));
    for pair in order.windows(2) {
        let (a, b) = (&schedule[pair[0]], &schedule[pair[1]]);
        if b.start < a.end && a.start < a.end {
            errors.push(FieldError::new(
                loc(pair[1], "start"),
                "value_error",
                format!("overlaps window {} (windows must not overlap)", pair[0]),
            ));
        }
    }
    errors
}

/// The organisation's groups taken together: each parent is a live group of the organisation, no
/// group is its own ancestor, and a building or a vehicle is listed by at most one group (a
/// device's innermost group must be unambiguous). Errors name the fields of `changed`.
pub fn check_tree(groups: &[(Uuid, &GridGroup)], changed: Uuid) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let by_id: std::collections::HashMap<Uuid, &GridGroup> = groups.iter().copied().collect();
    let Some(group) = by_id.get(&changed) else {
        return errors;
    };
    if let Some(parent) = group.parent_id {
        if !by_id.contains_key(&parent) {
            errors.push(FieldError::body(
                "parent_id",
                "value_error",
                "no such grid group in this organisation",
            ));
        } else {
            let mut at = Some(parent);
            let mut steps = 0;
            while let Some(g) = at {
                if g == changed || steps > groups.len() {
                    errors.push(FieldError::body(
                        "parent_id",
                        "value_error",
                        "would make the group its own ancestor",
                    ));
                    break;
                }
                steps += 1;
                at = by_id.get(&g).and_then(|g| g.parent_id);
            }
        }
    }
    for (key, ids) in [
        ("building_ids", &group.building_ids),
        ("electric_vehicle_ids", &group.electric_vehicle_ids),
    ] {
        for (i, id) in ids.iter().enumerate() {
            let other = groups.iter().find(|(other_id, other)| {
                *other_id != changed
                    && match key {
                        "building_ids" => other.building_ids.contains(id),
                        _ => other.electric_vehicle_ids.contains(id),
                    }
            });
            if let Some((other_id, _)) = other {
                errors.push(FieldError::new(
                    vec!["body".into(), key.into(), i.into()],
                    "value_error",
                    format!("already a member of grid group {other_id}"),
                ));
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 2, h, 0, 0).unwrap()
    }

    fn group(parent: Option<Uuid>) -> GridGroup {
        GridGroup {
            name: "Feeder".into(),
            parent_id: parent,
            building_ids: vec![],
            electric_vehicle_ids: vec![],
            power_limit_w: Some(100_000),
            schedule: vec![LimitWindow {
                start: at(17),
                end: at(19),
                power_limit_w: 40_000,
            }],
        }
    }

    #[test]
    fn the_lowest_limit_in_force_holds() {
        let g = group(None);
        assert_eq!(g.limit_w(at(16), at(17)), Some(100_000));
        assert_eq!(g.limit_w(at(16), at(18)), Some(40_000));
        let unlimited = GridGroup {
            power_limit_w: None,
            ..g
        };
        assert_eq!(unlimited.limit_w(at(12), at(13)), None);
        assert_eq!(unlimited.limit_w(at(18), at(20)), Some(40_000));
    }

    #[test]
    fn cycles_foreign_parents_and_double_membership_are_refused() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let ga = group(Some(b));
        let mut gb = group(Some(a));
        let errors = check_tree(&[(a, &ga), (b, &gb)], b);
        assert!(errors[0].msg.contains("own ancestor"), "{errors:?}");
        gb.parent_id = Some(Uuid::from_u128(9));
        assert!(
            check_tree(&[(a, &ga), (b, &gb)], b)[0]
                .msg
                .contains("no such")
        );
        let car = Uuid::from_u128(7);
        let ga = GridGroup {
            parent_id: None,
            electric_vehicle_ids: vec![car],
            ..group(None)
        };
        let gb = GridGroup {
            electric_vehicle_ids: vec![car],
            ..group(Some(a))
        };
        let errors = check_tree(&[(a, &ga), (b, &gb)], b);
        assert_eq!(errors[0].path(), "body.electric_vehicle_ids.0");
        assert!(check_tree(&[(a, &ga)], a).is_empty());
    }

    #[test]
    fn overlapping_or_empty_windows_are_refused() {
        let w = |s, e, p| LimitWindow {
            start: at(s),
            end: at(e),
            power_limit_w: p,
        };
        let errors = validate_schedule(&[w(1, 3, 5), w(2, 4, 5), w(5, 5, -1)], &["body"]);
        let paths: Vec<String> = errors.iter().map(FieldError::path).collect();
        assert_eq!(
            paths,
            ["body.2.end", "body.2.power_limit_w", "body.1.start"]
        );
    }
}
