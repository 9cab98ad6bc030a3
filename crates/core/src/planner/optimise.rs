//! Energy allocation over the timeline, its layout into charging chunks, and the chunks merged
//! into the plan's intervals.
//!
//! With one vehicle, a linear price and a per-segment power cap, the cost-minimal way to put `E`
//! kWh into a set of segments is to fill them cheapest first (a fractional knapsack: exact). The
//! only freedom left is among segments of *exactly* the marginal price: any split of the marginal
//! energy among them costs the same, so we spend that freedom on contiguity (extend existing blocks,
//! prefer long runs). Strictly cheaper segments are always full and strictly dearer ones empty in
//! every optimum, so nothing else can change without raising cost.

use chrono::{DateTime, Duration, Utc};
use std::cmp::Ordering;

use super::forecast::Segment;
use super::output::{PlanInterval, Reason};

/// Energies below this (kWh) are numerical dust: 1 mWh.
pub const EPS_KWH: f64 = 1e-6;
/// Energies below this (kWh) are float rounding noise and never become a command.
const DUST_KWH: f64 = 1e-9;

/// Grid energy per segment, by reason, in the order it is laid out in the segment.
#[derive(Debug, Clone)]
pub struct Allocation {
    pub power_kw: f64,
    pub parts: Vec<Vec<(Reason, f64)>>,
    /// Segments that carry forced (charge-now) energy: it is laid out from their start.
    pub forced: Vec<bool>,
    capacity: Vec<f64>,
}

impl Allocation {
    pub fn new(segments: &[Segment], power_kw: f64) -> Self {
        Allocation {
            power_kw,
            parts: vec![Vec::new(); segments.len()],
            forced: vec![false; segments.len()],
            capacity: segments.iter().map(|s| s.hours() * power_kw).collect(),
        }
    }

    /// Lowers segment `i`'s room to `kwh` (a shared power limit's window), never raises it.
    pub fn cap(&mut self, i: usize, kwh: f64) {
        self.capacity[i] = self.capacity[i].min(kwh.max(0.0));
    }

    pub fn used(&self, i: usize) -> f64 {
        self.parts[i].iter().map(|(_, e)| e).sum()
    }

    pub fn remaining(&self, i: usize) -> f64 {
        (self.capacity[i] - self.used(i)).max(0.0)
    }

    pub fn is_full(&self, i: usize) -> bool {
        self.remaining(i) <= EPS_KWH.min(self.capacity[i] * 1e-9)
    }

    fn add(&mut self, i: usize, reason: Reason, energy: f64) {
        // Rounding dust (e.g. 1e-15 kWh left after capping two goals at the same level).
        if energy <= DUST_KWH {
            return;
        }
        match self.parts[i].last_mut() {
            Some((r, e)) if *r == reason => *e += energy,
            _ => self.parts[i].push((reason, energy)),
        }
    }

    /// Charge at full power from the first of `candidates` (in time order) until `energy` is placed
    /// or the candidates run out; returns the energy placed.
    pub fn force(&mut self, candidates: &[usize], energy: f64, reason: Reason) -> f64 {
        let mut left = energy;
        for &i in candidates {
            if left <= 0.0 {
                break;
            }
            let take = self.remaining(i).min(left);
            if take > 0.0 {
                self.add(i, reason, take);
                self.forced[i] = true;
                left -= take;
            }
        }
        energy - left.max(0.0)
    }

    /// Place up to `energy` in `candidates`, cheapest first (published prices before forecasts),
    /// spending ties on contiguity; returns the energy placed.
    pub fn fill_cheapest(
        &mut self,
        segments: &[Segment],
        candidates: &[usize],
        energy: f64,
        reason: Reason,
    ) -> f64 {
        let mut order: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|&i| self.remaining(i) > 0.0)
            .collect();
        order.sort_by(|&a, &b| cost_key_cmp(&segments[a], &segments[b]).then(a.cmp(&b)));
        let mut left = energy;
        let mut pos = 0;
        while pos < order.len() && left > 0.0 {
            let head = &segments[order[pos]];
            let group_len = order[pos..]
                .iter()
                .take_while(|&&i| cost_key_cmp(&segments[i], head) == Ordering::Equal)
                .count();
            let group = &order[pos..pos + group_len];
            let group_room: f64 = group.iter().map(|&i| self.remaining(i)).sum();
            let fill_order = if group_room <= left {
                group.to_vec()
            } else {
                self.contiguity_order(segments, group)
            };
            for i in fill_order {
                if left <= 0.0 {
                    break;
                }
                let take = self.remaining(i).min(left);
                self.add(i, reason, take);
                left -= take;
            }
            pos += group_len;
        }
        energy - left.max(0.0)
    }

    /// Orders equally priced segments so that filling them in this order creates as few new
    /// charging blocks as possible: runs that touch charging on both sides, then on one side
    /// (filled from that side), then the longest free-standing runs, earliest first.
    fn contiguity_order(&self, segments: &[Segment], group: &[usize]) -> Vec<usize> {
        let mut sorted = group.to_vec();
        sorted.sort_unstable();
        let mut runs: Vec<Vec<usize>> = Vec::new();
        for i in sorted {
            match runs.last_mut() {
                Some(run)
                    if run
                        .last()
                        .is_some_and(|&j| j + 1 == i && contiguous(segments, j, i)) =>
                {
                    run.push(i)
                }
                _ => runs.push(vec![i]),
            }
        }
        let touches = |j: Option<usize>, i: usize| {
            j.is_some_and(|j| {
                j < segments.len() && self.used(j) > 0.0 && contiguous_any(segments, i, j)
            })
        };
        let mut ranked: Vec<(u8, f64, usize, Vec<usize>)> = runs
            .into_iter()
            .map(|run| {
                let first = run[0];
                let last = run[run.len() - 1];
                let left_touch = touches(first.checked_sub(1), first);
                let right_touch = touches(Some(last + 1), last);
                let rank = match (left_touch, right_touch) {
                    (true, true) => 0,
                    (true, false) | (false, true) => 1,
                    (false, false) => 2,
                };
                let room: f64 = run.iter().map(|&i| self.remaining(i)).sum();
                let mut run = run;
                if right_touch && !left_touch {
                    run.reverse();
                }
                (rank, room, first, run)
            })
            .collect();
        ranked.sort_by(|a, b| {
            a.0.cmp(&b.0)
                // Among free-standing runs, the longest first: fewer blocks for the same energy.
                .then(if a.0 == 2 {
                    b.1.total_cmp(&a.1)
                } else {
                    Ordering::Equal
                })
                .then(a.2.cmp(&b.2))
        });
        ranked.into_iter().flat_map(|(_, _, _, run)| run).collect()
    }
}

fn cost_key_cmp(a: &Segment, b: &Segment) -> Ordering {
    a.is_forecast()
        .cmp(&b.is_forecast())
        .then(a.price_eur_mwh.total_cmp(&b.price_eur_mwh))
}

fn contiguous(segments: &[Segment], earlier: usize, later: usize) -> bool {
    segments[earlier].end == segments[later].start
}

fn contiguous_any(segments: &[Segment], a: usize, b: usize) -> bool {
    if a < b {
        contiguous(segments, a, b)
    } else {
        contiguous(segments, b, a)
    }
}

/// One piece of charging at constant power for one reason within one segment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Chunk {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub power_w: f64,
    pub reason: Reason,
    /// Exact grid energy (the times are rounded to whole seconds, the energy is not).
    pub energy_kwh: f64,
    pub price_eur_mwh: f64,
    pub forecast: bool,
}

/// Lays the allocation out in time. A fully used segment is charged throughout; a partly used one
/// at full power next to the neighbouring block (so it adds no start/stop), or, if free-standing
/// and shorter than `min_block`, stretched at lower power (never below `min_power_w`) within its
/// segment: same energy, same price, so the same cost.
pub fn layout(
    segments: &[Segment],
    alloc: &Allocation,
    min_block: Duration,
    min_power_w: f64,
) -> Vec<Chunk> {
    let power_kw = alloc.power_kw;
    let mut chunks = Vec::new();
    let mut prev_used_at_end = false;
    for (i, seg) in segments.iter().enumerate() {
        let total = alloc.used(i);
        if total <= 0.0 {
            prev_used_at_end = false;
            continue;
        }
        let prev_adjacent = prev_used_at_end && i > 0 && contiguous(segments, i - 1, i);
        let next_used_at_start = i + 1 < segments.len()
            && contiguous(segments, i, i + 1)
            && alloc.used(i + 1) > 0.0
            && (alloc.forced[i + 1] || alloc.is_full(i + 1));
        let window_s = (seg.end - seg.start).num_milliseconds() as f64 / 1000.0;
        // A shared limit may cap the segment below the car's power (`Allocation::cap`).
        let seg_power_kw = if seg.hours() > 0.0 {
            (alloc.capacity[i] / seg.hours()).min(power_kw)
        } else {
            power_kw
        };
        let exact_s = total / seg_power_kw.max(1e-9) * 3600.0;
        let (start, end) = if alloc.is_full(i) || exact_s >= window_s - 1.0 {
            (seg.start, seg.end)
        } else {
            let mut dur_s = exact_s.ceil().max(1.0);
            let at_start = alloc.forced[i] || prev_adjacent || !next_used_at_start;
            let free_standing = !alloc.forced[i] && !prev_adjacent && !next_used_at_start;
            let min_block_s = min_block.num_seconds() as f64;
            if free_standing && dur_s < min_block_s {
                let slowest_s = if min_power_w > 0.0 {
                    (total / (min_power_w / 1000.0) * 3600.0).floor()
                } else {
                    min_block_s
                };
                dur_s = dur_s.max(min_block_s.min(slowest_s).min(window_s.floor()));
            }
            let dur = Duration::seconds(dur_s as i64);
            if at_start {
                (seg.start, seg.start + dur)
            } else {
                (seg.end - dur, seg.end)
            }
        };
        let hours = super::forecast::hours_between(start, end);
        let power_w = total / hours * 1000.0;
        let mut t = start;
        let n = alloc.parts[i].len();
        let mut in_segment: Vec<Chunk> = Vec::with_capacity(n);
        for (k, &(reason, energy)) in alloc.parts[i].iter().enumerate() {
            let part_end = if k + 1 == n {
                end
            } else {
                let secs = (energy / (power_w / 1000.0) * 3600.0).round() as i64;
                (t + Duration::seconds(secs)).min(end)
            };
            let chunk = Chunk {
                start: t,
                end: part_end,
                power_w,
                reason,
                energy_kwh: energy,
                price_eur_mwh: seg.price_eur_mwh,
                forecast: seg.is_forecast(),
            };
            // A part too small to last a second after rounding is no command of its own: its
            // energy (same segment, same price) rides with its neighbour.
            match in_segment.last_mut() {
                Some(prev) if part_end == t => prev.energy_kwh += energy,
                Some(prev) if prev.start == prev.end => {
                    let carried = prev.energy_kwh;
                    *prev = Chunk {
                        start: prev.start,
                        energy_kwh: energy + carried,
                        ..chunk
                    };
                }
                _ => in_segment.push(chunk),
            }
            t = part_end;
        }
        chunks.extend(in_segment);
        prev_used_at_end = end == seg.end;
    }
    chunks
}

/// Merges chunks into intervals (contiguous, same reason, power within 1 %), with battery levels.
pub(crate) fn intervals_from_chunks(
    chunks: &[Chunk],
    start_level: f64,
    pct_per_grid_kwh: f64,
) -> Vec<PlanInterval> {
    let mut out: Vec<PlanInterval> = Vec::new();
    let mut level = start_level;
    for c in chunks {
        level += c.energy_kwh * pct_per_grid_kwh;
        let cost = c.energy_kwh * c.price_eur_mwh / 1000.0;
        if let Some(last) = out.last_mut() {
            let same_power = (last.power_w - c.power_w).abs() <= 0.01 * last.power_w.max(c.power_w);
            if last.end == c.start && last.reason == c.reason && same_power {
                let energy = last.energy_kwh + c.energy_kwh;
                let hours = super::forecast::hours_between(last.start, c.end);
                last.end = c.end;
                last.energy_kwh = energy;
                // Part boundaries are rounded to whole seconds: never report more than either
                // piece's power.
                last.power_w = (energy / hours * 1000.0).min(last.power_w.max(c.power_w));
                last.cost_eur += cost;
                last.battery_level_end = level;
                last.uses_forecast_prices |= c.forecast;
                continue;
            }
        }
        out.push(PlanInterval {
            start: c.start,
            end: c.end,
            power_w: c.power_w,
            reason: c.reason,
            energy_kwh: c.energy_kwh,
            cost_eur: cost,
            battery_level_end: level,
            uses_forecast_prices: c.forecast,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(prices: &[f64]) -> Vec<Segment> {
        let t0: DateTime<Utc> = "2024-01-10T00:00:00Z".parse().unwrap();
        prices
            .iter()
            .enumerate()
            .map(|(i, p)| Segment {
                start: t0 + Duration::hours(i as i64),
                end: t0 + Duration::hours(i as i64 + 1),
                price_eur_mwh: *p,
                basis: None,
            })
            .collect()
    }

    #[test]
    fn fills_cheapest_first() {
        let s = segs(&[50.0, 10.0, 30.0, 20.0]);
        let mut a = Allocation::new(&s, 10.0);
        let all: Vec<usize> = (0..4).collect();
        let placed = a.fill_cheapest(&s, &all, 25.0, Reason::Target);
        assert_eq!(placed, 25.0);
        assert_eq!(
            (a.used(0), a.used(1), a.used(2), a.used(3)),
            (0.0, 10.0, 5.0, 10.0)
        );
    }

    #[test]
    fn equal_prices_extend_the_existing_block() {
        // Cheapest at 3; hours 0, 1 and 4 tie at 20: the marginal energy goes next to hour 3.
        let s = segs(&[20.0, 20.0, 30.0, 10.0, 20.0]);
        let mut a = Allocation::new(&s, 10.0);
        let all: Vec<usize> = (0..5).collect();
        a.fill_cheapest(&s, &all, 15.0, Reason::Target);
        assert_eq!(a.used(3), 10.0);
        assert_eq!(a.used(4), 5.0);
        let chunks = layout(&s, &a, Duration::minutes(15), 1380.0);
        // One contiguous block 03:00–04:30.
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].end, chunks[1].start);
        assert_eq!(chunks[1].end - chunks[1].start, Duration::minutes(30));
    }

    #[test]
    fn partial_segment_before_a_block_is_placed_at_its_end() {
        let s = segs(&[20.0, 10.0]);
        let mut a = Allocation::new(&s, 10.0);
        a.fill_cheapest(&s, &[0, 1], 12.5, Reason::Target);
        let chunks = layout(&s, &a, Duration::minutes(15), 1380.0);
        assert_eq!(chunks[0].end, chunks[1].start);
        assert_eq!(chunks[0].end - chunks[0].start, Duration::minutes(15));
    }

    #[test]
    fn short_free_standing_chunk_is_stretched_at_lower_power() {
        let s = segs(&[10.0]);
        let mut a = Allocation::new(&s, 11.0);
        // 0.55 kWh = 3 minutes at 11 kW; stretched to 15 minutes at 2.2 kW.
        a.fill_cheapest(&s, &[0], 0.55, Reason::Target);
        let chunks = layout(&s, &a, Duration::minutes(15), 1380.0);
        assert_eq!(chunks[0].end - chunks[0].start, Duration::minutes(15));
        assert!((chunks[0].power_w - 2200.0).abs() < 1e-6);
        assert_eq!(chunks[0].energy_kwh, 0.55);
    }
}
