//! Energy contracts (Podero §3.3) with the tariff extension: CRUD, every validation rule, the
//! two-organisation matrix, and a worker that plans on the customer's price.

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::{Duration as StdDuration, Instant};
use uuid::Uuid;

fn contracts_path(org: Uuid, user: Uuid) -> String {
    format!("/api/partners/v2.0/org/{org}/users/{user}/energy-contracts")
}

fn contract_path(org: Uuid, user: Uuid, id: Uuid) -> String {
    format!("{}/{id}", contracts_path(org, user))
}

/// A German spot contract with a §14a Modul 3 grid fee: 0.50 €/kWh from 03:00 to 04:00 Berlin
/// time (02:00–03:00 UTC in November), 0.08 otherwise; VAT 19 %.
fn modul3_contract() -> Value {
    json!({
        "energy_contract_type": "spot_hourly",
        "currency_energy_price": "EUR",
        "energy_price_includes_external_components": false,
        "supplier": "Stadtwerke Beispiel",
        "meter_id": "1EMH0012345678",
        "vat_percentage": 19,
        "spot_markup_per_kwh": 0.02,
        "tariff_components": [{
            "name": "grid fee (§14a Modul 3)",
            "price_per_kwh": 0.08,
            "windows": [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                         "from": "03:00", "to": "04:00", "price_per_kwh": 0.5}],
            "valid_from": "2026-01-01"
        }]
    })
}

#[tokio::test]
async fn contracts_are_created_read_updated_and_deleted() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let (t, user) = s.tenant_with_user("Utility A").await;
        let home = s.create_building(&t, user, json!({"name": "Home"})).await;
        let path = contracts_path(t.org_id, user);

        let (status, list) = s.get(&t.token, &path).await;
        assert_eq!((status, list), (200, json!([])));

        // Nothing is required; Podero's defaults.
        let (status, bare) = s.post(&t.token, &path, json!({})).await;
        assert_eq!(status, 200, "{bare}");
        assert_eq!(bare["energy_prices"], json!([]));
        assert_eq!(bare["building"], Value::Null);
        assert_eq!(bare["energy_contract_type"], Value::Null);
        assert_eq!(bare["user"], json!(user));

        let mut body = modul3_contract();
        body["building_id"] = home["id"].clone();
        let (status, created) = s.post(&t.token, &path, body).await;
        assert_eq!(status, 200, "{created}");
        assert_eq!(created["building"], home["id"]);
        assert_eq!(created["vat_percentage"], 19.0);
        assert_eq!(
            created["tariff_components"][0]["windows"][0]["from"],
            "03:00:00"
        );
        assert_eq!(created["tariff_components"][0]["valid_from"], "2026-01-01");
        let id = id_of(&created);
        let (status, read) = s.get(&t.token, &contract_path(t.org_id, user, id)).await;
        assert_eq!((status, &read), (200, &created));

        // PUT is partial; prices are stored sorted.
        let (status, updated) = s
            .put(
                &t.token,
                &contract_path(t.org_id, user, id),
                json!({"energy_contract_type": "monthly", "energy_prices": [
                    {"price": 0.28, "timestamp": "2026-12-01T00:00:00Z"},
                    {"price": 0.31, "timestamp": "2026-01-01T00:00:00+01:00"}]}),
            )
            .await;
        assert_eq!(status, 200, "{updated}");
        assert_eq!(updated["energy_contract_type"], "monthly");
        assert_eq!(updated["energy_prices"][0]["price"], 0.31);
        assert_eq!(updated["supplier"], "Stadtwerke Beispiel");
        assert_eq!(updated["tariff_components"], created["tariff_components"]);

        let (status, list) = s.get(&t.token, &path).await;
        assert_eq!(status, 200);
        assert_eq!(list.as_array().unwrap().len(), 2);

        let (status, _) = s.delete(&t.token, &contract_path(t.org_id, user, id)).await;
        assert_eq!(status, 204);
        let (status, _) = s.get(&t.token, &contract_path(t.org_id, user, id)).await;
        assert_eq!(status, 404);
        let (status, _) = s.delete(&t.token, &contract_path(t.org_id, user, id)).await;
        assert_eq!(status, 404);
        let (status, list) = s
            .get(&t.token, &format!("{path}?include_deleted=true"))
            .await;
        assert_eq!(status, 200);
        assert_eq!(list.as_array().unwrap().len(), 2);

        // Deleting the user deletes their contracts.
        let (status, _) = s.delete(&t.token, &user_path(t.org_id, user)).await;
        assert_eq!(status, 204);
        let (status, _) = s.get(&t.token, &path).await;
        assert_eq!(status, 404);
        s.stop().await;
    }
}

#[tokio::test]
async fn every_validation_rule_names_its_field_and_writes_nothing() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let (t, user) = s.tenant_with_user("Utility A").await;
        let other_user = s.create_user(&t, "ben@example.com").await;
        let others_home = s
            .create_building(&t, other_user, json!({"name": "Ben's"}))
            .await;
        let path = contracts_path(t.org_id, user);
        let window = |from: &str, days: Value| {
            json!({"tariff_components": [{"name": "fee", "price_per_kwh": 0.1,
                "windows": [{"days": days, "from": from, "to": "06:00", "price_per_kwh": 0.0}]}]})
        };
        let cases: Vec<(Value, &str)> = vec![
            (
                json!({"energy_contract_type": "hourly"}),
                "energy_contract_type",
            ),
            (
                json!({"energy_prices": [{"price": 0.3, "timestamp": "2026-01-01T00:00:00Z"}]}),
                "currency_energy_price",
            ),
            (
                json!({"currency_energy_price": "EUR", "energy_prices": [{"price": 0.3}]}),
                "energy_prices.0.timestamp",
            ),
            (
                json!({"currency_energy_price": "EUR",
                       "energy_prices": [{"price": 9, "timestamp": "2026-01-01T00:00:00Z"}]}),
                "energy_prices.0.price",
            ),
            (
                json!({"currency_energy_price": "EUR", "energy_contract_type": "yearly",
                       "energy_prices": [{"price": 0.3, "timestamp": "2026-01-01T00:00:00Z"},
                                         {"price": 0.4, "timestamp": "2026-01-01T01:00:00+01:00"}]}),
                "energy_prices.1.timestamp",
            ),
            (json!({"energy_prices": "none"}), "energy_prices"),
            (json!({"energy_prices": [1]}), "energy_prices.0"),
            (json!({"meter_id": "12345678901234567890"}), "meter_id"),
            (json!({"supplier": "x".repeat(101)}), "supplier"),
            (
                json!({"currency_energy_price": "eur"}),
                "currency_energy_price",
            ),
            // A spot price is in EUR; a fixed CHF contract is fine (below).
            (
                json!({"currency_energy_price": "CHF"}),
                "currency_energy_price",
            ),
            (json!({"vat_percentage": 150}), "vat_percentage"),
            (json!({"spot_markup_per_kwh": -6}), "spot_markup_per_kwh"),
            (json!({"timezone": "Europe/Atlantis"}), "timezone"),
            (json!({"building_id": others_home["id"]}), "building_id"),
            (json!({"tariff": {}}), "tariff"),
            (
                window("01:10", json!(["mon"])),
                "tariff_components.0.windows.0.from",
            ),
            (
                window("01:00", json!(["monday"])),
                "tariff_components.0.windows.0.days",
            ),
            (
                window("01:00", json!([])),
                "tariff_components.0.windows.0.days",
            ),
            (
                json!({"tariff_components": [{"price_per_kwh": 0.1}]}),
                "tariff_components.0.name",
            ),
            (
                json!({"tariff_components": [{"name": "fee", "price_per_kwh": 0.1, "colour": "red"}]}),
                "tariff_components.0.colour",
            ),
            (
                json!({"tariff_components": [{"name": "fee", "price_per_kwh": 0.1,
                    "valid_from": "2026-02-01", "valid_until": "2026-01-31"}]}),
                "tariff_components.0.valid_until",
            ),
            (
                json!({"tariff_components": [{"name": "fee", "price_per_kwh": 0.1,
                    "valid_from": "1 March"}]}),
                "tariff_components.0.valid_from",
            ),
        ];
        for (body, field) in &cases {
            let (status, answer) = s.post(&t.token, &path, body.clone()).await;
            assert_eq!(status, 422, "{body} → {answer}");
            assert_eq!(
                invalid_fields(&answer),
                vec![(*field).to_owned()],
                "{body} → {answer}"
            );
        }
        let (_, list) = s.get(&t.token, &path).await;
        assert_eq!(list, json!([]), "nothing was written");

        let (status, chf) = s
            .post(
                &t.token,
                &path,
                json!({"energy_contract_type": "yearly", "currency_energy_price": "CHF",
                       "energy_prices": [{"price": 0.27, "timestamp": "2026-01-01T00:00:00Z"}]}),
            )
            .await;
        assert_eq!(status, 200, "{chf}");
        // A refused update leaves the contract as it was (the currency rules depend on the
        // contract: its CHF prices make two of the bodies above valid).
        let id = id_of(&chf);
        for (body, field) in cases.iter().filter(|(_, f)| *f != "currency_energy_price") {
            let (status, answer) = s
                .put(&t.token, &contract_path(t.org_id, user, id), body.clone())
                .await;
            assert_eq!(status, 422, "{body} → {answer}");
            assert_eq!(invalid_fields(&answer), vec![(*field).to_owned()]);
        }
        // Switching the CHF contract to spot would price EUR market prices in CHF.
        let (status, answer) = s
            .put(
                &t.token,
                &contract_path(t.org_id, user, id),
                json!({"energy_contract_type": "spot_hourly", "energy_prices": []}),
            )
            .await;
        assert_eq!(status, 422, "{answer}");
        assert_eq!(invalid_fields(&answer), vec!["currency_energy_price"]);
        let (_, read) = s.get(&t.token, &contract_path(t.org_id, user, id)).await;
        assert_eq!(read, chf);
        s.stop().await;
    }
}

#[tokio::test]
async fn another_organisations_contracts_are_not_found() {
    for backend in backends() {
        let s = TestServer::start(&backend).await;
        let (a, anna) = s.tenant_with_user("Utility A").await;
        let (b, bert) = s.tenant_with_user("Utility B").await;
        let (status, mine) = s
            .post(&a.token, &contracts_path(a.org_id, anna), modul3_contract())
            .await;
        assert_eq!(status, 200);
        let id = id_of(&mine);
        let (status, theirs) = s
            .post(&b.token, &contracts_path(b.org_id, bert), json!({}))
            .await;
        assert_eq!(status, 200);
        let theirs = id_of(&theirs);

        // B's token on A's paths: the organisation in the path is not B's.
        for path in [
            contracts_path(a.org_id, anna),
            contract_path(a.org_id, anna, id),
        ] {
            let (status, _) = s.get(&b.token, &path).await;
            assert_eq!(status, 404, "GET {path}");
            let (status, _) = s.put(&b.token, &path, json!({"supplier": "x"})).await;
            assert!(status == 404 || status == 405, "PUT {path}: {status}");
        }
        let (status, _) = s
            .post(&b.token, &contracts_path(a.org_id, anna), json!({}))
            .await;
        assert_eq!(status, 404);
        let (status, _) = s.delete(&b.token, &contract_path(a.org_id, anna, id)).await;
        assert_eq!(status, 404);

        // A's own organisation in the path, but B's user or B's contract.
        let (status, _) = s.get(&a.token, &contracts_path(a.org_id, bert)).await;
        assert_eq!(status, 404);
        let (status, _) = s
            .post(&a.token, &contracts_path(a.org_id, bert), json!({}))
            .await;
        assert_eq!(status, 404);
        for path in [
            contract_path(a.org_id, anna, theirs),
            contract_path(a.org_id, bert, theirs),
        ] {
            let (status, _) = s.get(&a.token, &path).await;
            assert_eq!(status, 404, "GET {path}");
            let (status, _) = s.put(&a.token, &path, json!({"supplier": "x"})).await;
            assert_eq!(status, 404, "PUT {path}");
            let (status, _) = s.delete(&a.token, &path).await;
            assert_eq!(status, 404, "DELETE {path}");
        }
        // B's contract is untouched.
        let (status, read) = s
            .get(&b.token, &contract_path(b.org_id, bert, theirs))
            .await;
        assert_eq!(status, 200);
        assert_eq!(read["supplier"], Value::Null);
        s.stop().await;
    }
}

/// A sandbox car in DE_LU, smart charging on, 80 % due by 06:00.
async fn smart_sandbox_ev(s: &TestServer, t: &Tenant, user: Uuid) -> Uuid {
    let ev = s
        .create_ev(
            t,
            user,
            json!({"price_zone": "DE_LU", "is_smart_optimization_active": true,
                   "minimum_charge_limit": 80, "charge_deadline_at": "06:00",
                   "device_model": {"manufacturer": "tesla", "model": "model 3",
                                    "cloud_service": voltplan_clouds::SANDBOX_CLOUD.id}}),
        )
        .await;
    id_of(&ev)
}

/// The plan's intervals that overlap `[from, to)` (RFC 3339 strings compare as instants here:
/// all are UTC with the same format).
fn charges_between(plan: &Value, from: &str, to: &str) -> bool {
    plan["intervals"].as_array().unwrap().iter().any(|iv| {
        let (start, end) = (iv["start"].as_str().unwrap(), iv["end"].as_str().unwrap());
        start < to && end > from && iv["power_w"].as_f64().unwrap() > 0.0
    })
}

#[tokio::test]
async fn the_worker_plans_on_the_customers_price_and_back_within_one_cycle() {
    for backend in backends() {
        let (s, sandbox) = TestServer::start_with_sandbox(&backend).await;
        s.cheap_night_hour_prices().await;
        let (t, user) = s.tenant_with_user("Utility A").await;
        let ev = smart_sandbox_ev(&s, &t, user).await;
        let (status, contract) = s
            .post(&t.token, &contracts_path(t.org_id, user), modul3_contract())
            .await;
        assert_eq!(status, 200, "{contract}");
        let contract_id = contract["id"].clone();
        let (status, _) = s
            .post_empty(
                &t.token,
                &format!("{}/plug-in", sandbox_ev_path(t.org_id, ev)),
            )
            .await;
        assert_eq!(status, 200);

        let worker = s.sandbox_worker(&sandbox, "tariff-test");
        let plan_path = format!("{}/plan", ev_path(t.org_id, user, ev));
        let deadline = Instant::now() + StdDuration::from_secs(30);
        let answer = loop {
            worker.run_once().await.unwrap();
            let (status, answer) = s.get(&t.token, &plan_path).await;
            assert_eq!(status, 200);
            if !answer["plan"].is_null() {
                break answer;
            }
            assert!(Instant::now() < deadline, "no plan: {answer}");
        };
        let plan = &answer["plan"];
        assert_eq!(plan["pricing"]["basis"], "customer", "{plan}");
        assert_eq!(plan["pricing"]["energy_contract_id"], contract_id);
        assert_eq!(plan["pricing"]["currency"], "EUR");
        assert!(plan["pricing"]["wholesale_cost_eur"].as_f64().unwrap() > 0.0);
        // The hour that is cheapest wholesale is the dearest for the customer (grid fee 0.50).
        let (cheap_from, cheap_to) = ("2026-11-27T02:00:00Z", "2026-11-27T03:00:00Z");
        assert!(!charges_between(plan, cheap_from, cheap_to), "{plan}");
        let night = answer["prices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["start"] == cheap_from)
            .expect("the plan's window has the cheap hour");
        assert_eq!(night["price_eur_mwh"], 10.0);
        // (0.010 + 0.02 + 0.50) × 1.19 = 0.6307 €/kWh.
        let customer = night["customer_price_per_mwh"].as_f64().unwrap();
        assert!((customer - 630.7).abs() < 1e-6, "{night}");

        // Without the contract, the next cycle plans on the day-ahead price again.
        let (status, _) = s
            .delete(&t.token, &contract_path(t.org_id, user, id_of(&contract)))
            .await;
        assert_eq!(status, 204);
        worker.run_once().await.unwrap();
        let (_, answer) = s.get(&t.token, &plan_path).await;
        let plan = &answer["plan"];
        assert_eq!(plan["pricing"]["basis"], "wholesale", "{plan}");
        assert!(charges_between(plan, cheap_from, cheap_to), "{plan}");
        assert!(answer["prices"][0]["customer_price_per_mwh"].is_null());
        s.stop().await;
    }
}

#[tokio::test]
async fn sessions_and_savings_report_the_customers_bill_beside_the_wholesale_cost() {
    for backend in backends() {
        let (s, sandbox) = TestServer::start_with_sandbox(&backend).await;
        s.cheap_night_hour_prices().await;
        let (t, user) = s.tenant_with_user("Utility A").await;
        let ev = smart_sandbox_ev(&s, &t, user).await;
        // A flat 0.10 €/kWh grid fee and a 0.02 markup, no VAT: every kWh costs the customer
        // exactly 0.12 € more than wholesale, whenever it is drawn.
        let (status, contract) = s
            .post(
                &t.token,
                &contracts_path(t.org_id, user),
                json!({"energy_contract_type": "spot_hourly", "spot_markup_per_kwh": 0.02,
                       "tariff_components": [{"name": "grid fee", "price_per_kwh": 0.10}]}),
            )
            .await;
        assert_eq!(status, 200, "{contract}");
        let sandbox_path = sandbox_ev_path(t.org_id, ev);
        let (status, _) = s
            .post_empty(&t.token, &format!("{sandbox_path}/plug-in"))
            .await;
        assert_eq!(status, 200);
        let worker = s.sandbox_worker(&sandbox, "tariff-session-test");
        // Through the night to the deadline (06:00 Berlin = 05:00 UTC), a cycle every 15 minutes.
        let end = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 11, 27, 5, 30, 0).unwrap();
        while s.clock_now() < end {
            worker.run_once().await.unwrap();
            s.clock.advance(chrono::Duration::minutes(15));
        }
        // The night outlived the token.
        let t = Tenant {
            token: s.token(&t.client_id, &t.client_secret).await,
            ..t
        };
        let (status, _) = s
            .post_empty(&t.token, &format!("{sandbox_path}/unplug"))
            .await;
        assert_eq!(status, 200);
        worker.run_once().await.unwrap();

        let sessions = format!(
            "{}/sessions?from=2026-11-26&to=2026-11-27",
            ev_path(t.org_id, user, ev)
        );
        let (status, page) = s.get(&t.token, &sessions).await;
        assert_eq!(status, 200, "{page}");
        let session = &page["items"][0];
        assert_ne!(session["unplug_time"], Value::Null, "{session}");
        let energy = session["energy_charged_kwh"].as_f64().unwrap();
        assert!(energy > 10.0, "{session}");
        assert_eq!(session["energy_contract_id"], contract["id"]);
        assert_eq!(session["customer_currency"], "EUR");
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
        let wholesale = session["actual_cost_eur"].as_f64().unwrap();
        let customer = session["customer_cost"].as_f64().unwrap();
        assert!(close(customer, wholesale + 0.12 * energy), "{session}");
        let savings = session["customer_savings"].as_f64().unwrap();
        let baseline = session["customer_baseline_cost"].as_f64().unwrap();
        assert!(close(baseline - customer, savings), "{session}");
        // A flat surcharge moves no charging: the bill saves what wholesale saves.
        assert!(
            close(savings, session["actual_savings_eur"].as_f64().unwrap()),
            "{session}"
        );

        // `/data` names the customer's price beside the day-ahead one when asked for it: here
        // always 120 €/MWh more (the flat 0.12 €/kWh).
        let data_path = format!(
            "{}/data?from_datetime=2026-11-26T12:00:00Z&to_datetime=2026-11-27T06:00:00Z\
             &resolution=1HOUR&keywords=price,customer_price",
            ev_path(t.org_id, user, ev)
        );
        let (status, body) = s.get(&t.token, &data_path).await;
        assert_eq!(status, 200, "{body}");
        let rows = body["data"].as_array().unwrap();
        assert!(rows.len() > 10, "{body}");
        for row in rows {
            let (price, customer) = (row["price"].as_f64(), row["customer_price"].as_f64());
            assert!(close(customer.unwrap() - price.unwrap(), 120.0), "{row}");
        }
        // By default the rows are Podero's.
        let (_, body) = s
            .get(
                &t.token,
                &format!(
                    "{}/data?from_datetime=2026-11-26T12:00:00Z&to_datetime=2026-11-27T06:00:00Z",
                    ev_path(t.org_id, user, ev)
                ),
            )
            .await;
        assert!(body["data"][0].get("customer_price").is_none(), "{body}");

        let savings_path = format!(
            "{}/savings?from=2026-11-01&to=2026-11-30",
            ev_path(t.org_id, user, ev)
        );
        let (status, body) = s.get(&t.token, &savings_path).await;
        assert_eq!(status, 200, "{body}");
        let row = &body["data"][0];
        assert_eq!(row["customer_savings"]["currency"], "EUR");
        assert_eq!(row["customer_savings"]["sessions"], 1);
        assert!(close(
            row["customer_savings"]["total"].as_f64().unwrap(),
            (savings * 10_000.0).round() / 10_000.0
        ));
        s.stop().await;
    }
}
