//! The price a device is planned and costed on: its owner's energy contract applied to the
//! zone's day-ahead prices (`voltplan_core::tariff`), or the day-ahead price itself when the
//! owner has no contract or the contract cannot price the slots (then the plan says why).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;
use voltplan_core::PriceZone;
use voltplan_core::planner::{Plan, PlanError, PlanInput, PlanPricing, PriceBasis, SharedLimit};
use voltplan_core::tariff::customer_prices;
use voltplan_store::{
    EnergyContractRecord, OrgScope, Store, StoreError, VehicleRecord, contract_for,
};

use crate::price_book::PriceBook;
use crate::replan::Fnv1a;

/// The customer's prices of one (zone, organisation, contract).
#[derive(Debug)]
pub struct CustomerBook {
    /// Per MWh in `currency`, on the wholesale book's slots.
    pub book: PriceBook,
    pub contract_id: Uuid,
    pub currency: String,
}

/// How one device is priced in this batch.
#[derive(Debug, Default)]
pub enum Pricing {
    /// No contract: the day-ahead price.
    #[default]
    Wholesale,
    Customer(CustomerBook),
    /// The owner's contract could not price the slots; planned on the day-ahead price.
    Refused {
        contract_id: Uuid,
        note: String,
    },
}

impl Pricing {
    /// The customer's book, when the device is priced by its contract.
    pub fn customer(&self) -> Option<&CustomerBook> {
        match self {
            Pricing::Customer(book) => Some(book),
            _ => None,
        }
    }

    /// Plans `input` on this pricing (the customer's prices, else the day-ahead ones, aiming to
    /// be ready `ready_margin` early) and says in `plan.pricing` which it was.
    pub fn plan(
        &self,
        mut input: PlanInput,
        wholesale: &PriceBook,
        (now, ready_margin): (DateTime<Utc>, Duration),
        shared: Option<&SharedLimit>,
    ) -> Result<Plan, PlanError> {
        let slots = match self {
            Pricing::Customer(c) => {
                input.settings.currency = Some(c.currency.clone());
                &c.book.slots
            }
            _ => &wholesale.slots,
        };
        let mut plan = input.plan_within(now, slots, ready_margin, shared)?;
        let power_kw = input.vehicle.max_charge_power_w / 1000.0;
        plan.pricing = Some(self.describe(&plan, (input.settings.price_zone, wholesale), power_kw));
        Ok(plan)
    }

    /// Mixed into the plan-inputs hash: a new or changed contract re-plans.
    pub fn fingerprint(&self, contract_updated_at: Option<DateTime<Utc>>) -> u64 {
        let id = match self {
            Pricing::Wholesale => return 0,
            Pricing::Customer(c) => c.contract_id,
            Pricing::Refused { contract_id, .. } => *contract_id,
        };
        let mut h = Fnv1a::new();
        h.bytes(id.as_bytes());
        h.option(contract_updated_at, |h, at| {
            h.bytes(&at.timestamp_micros().to_le_bytes())
        });
        h.finish()
    }

    /// What `plan` was priced with; on the customer's price also its day-ahead cost.
    fn describe(
        &self,
        plan: &Plan,
        (zone, wholesale): (PriceZone, &PriceBook),
        power_kw: f64,
    ) -> PlanPricing {
        let market = zone.info().currency.to_owned();
        match self {
            Pricing::Wholesale => PlanPricing {
                basis: PriceBasis::Wholesale,
                energy_contract_id: None,
                currency: market.clone(),
                wholesale_cost_eur: None,
                wholesale_baseline_cost_eur: None,
                note: None,
            },
            Pricing::Refused { contract_id, note } => PlanPricing {
                basis: PriceBasis::Wholesale,
                energy_contract_id: Some(*contract_id),
                currency: market.clone(),
                wholesale_cost_eur: None,
                wholesale_baseline_cost_eur: None,
                note: Some(note.clone()),
            },
            Pricing::Customer(c) => PlanPricing {
                basis: PriceBasis::Customer,
                energy_contract_id: Some(c.contract_id),
                currency: c.currency.clone(),
                wholesale_cost_eur: Some(
                    plan.intervals
                        .iter()
                        .map(|iv| wholesale.cost_of(iv.energy_kwh, iv.start, iv.end))
                        .sum(),
                ),
                wholesale_baseline_cost_eur: Some(wholesale.cost_charging_at_once(
                    plan.energy_kwh,
                    power_kw,
                    plan.planned_at,
                )),
                note: None,
            },
        }
    }
}

/// A device's owner and place, to find its contract.
#[derive(Debug, Clone, Copy)]
pub struct Owner {
    pub org_id: Uuid,
    pub user_id: Uuid,
    pub building_id: Option<Uuid>,
    pub price_key: (PriceZone, Uuid),
}

impl Owner {
    /// An electric vehicle's owner and place; its price key is its (zone, organisation).
    pub fn of_vehicle(v: &VehicleRecord) -> Self {
        Owner {
            org_id: v.org_id,
            user_id: v.user_id,
            building_id: v.building_id,
            price_key: (v.price_zone, v.org_id),
        }
    }
}

/// Each device's pricing (in the order given) and its contract's last change, with one
/// query per organisation and one customer book per (zone, organisation, contract).
pub(crate) async fn load_pricing(
    store: &dyn Store,
    owners: &[Owner],
    books: &HashMap<(PriceZone, Uuid), Arc<PriceBook>>,
) -> Result<Vec<(Arc<Pricing>, Option<DateTime<Utc>>)>, StoreError> {
    let mut users: HashMap<Uuid, HashSet<Uuid>> = HashMap::new();
    for o in owners {
        users.entry(o.org_id).or_default().insert(o.user_id);
    }
    let mut contracts: Vec<EnergyContractRecord> = Vec::new();
    for (org, ids) in users {
        let ids: Vec<Uuid> = ids.into_iter().collect();
        contracts.extend(
            store
                .energy_contracts_of_users(OrgScope::new(org), &ids)
                .await?,
        );
    }
    let wholesale = Arc::new(Pricing::Wholesale);
    let mut priced: HashMap<((PriceZone, Uuid), Uuid), Arc<Pricing>> = HashMap::new();
    let mut out = Vec::with_capacity(owners.len());
    for o in owners {
        let Some(contract) = contract_for(&contracts, o.user_id, o.building_id) else {
            out.push((wholesale.clone(), None));
            continue;
        };
        let pricing = priced
            .entry((o.price_key, contract.id))
            .or_insert_with(|| Arc::new(price(contract, o.price_key, books)))
            .clone();
        out.push((pricing, Some(contract.updated_at)));
    }
    Ok(out)
}

fn price(
    contract: &EnergyContractRecord,
    (zone, _): (PriceZone, Uuid),
    books: &HashMap<(PriceZone, Uuid), Arc<PriceBook>>,
) -> Pricing {
    let empty = PriceBook::default();
    let wholesale = books
        .get(&(zone, contract.org_id))
        .map_or(&empty, |b| b.as_ref());
    match customer_prices(&contract.contract, &wholesale.slots, zone) {
        Ok(prices) => Pricing::Customer(CustomerBook {
            book: PriceBook {
                slots: prices.slots,
                coverage_end: wholesale.coverage_end,
            },
            contract_id: contract.id,
            currency: prices.currency,
        }),
        Err(e) => {
            tracing::warn!(energy_contract_id = %contract.id, error = %e, "energy contract cannot price the device; planned on day-ahead prices");
            Pricing::Refused {
                contract_id: contract.id,
                note: format!("planned on the day-ahead price: {e}"),
            }
        }
    }
}
