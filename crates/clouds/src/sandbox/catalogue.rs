//! Real EV models (`data/ev_models.json`) to build simulated cars from.

use super::physics::VehicleSpec;

/// The catalogue shipped with Voltplan, compiled in so the demo needs no files at run time.
const EMBEDDED_EV_MODELS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../data/ev_models.json"
));

/// Parses a catalogue in the format of `data/ev_models.json`.
pub fn parse_catalogue(json: &str) -> Result<Vec<VehicleSpec>, serde_json::Error> {
    serde_json::from_str(json)
}

/// The 16 models of `data/ev_models.json`.
pub fn embedded_catalogue() -> Result<Vec<VehicleSpec>, serde_json::Error> {
    parse_catalogue(EMBEDDED_EV_MODELS)
}

/// Finds a model by manufacturer and model name, ignoring case.
pub fn find_model<'a>(
    catalogue: &'a [VehicleSpec],
    manufacturer: &str,
    model: &str,
) -> Option<&'a VehicleSpec> {
    catalogue.iter().find(|spec| {
        spec.manufacturer.eq_ignore_ascii_case(manufacturer)
            && spec.model.eq_ignore_ascii_case(model)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalogue_has_the_sixteen_models_with_sane_numbers() {
        let catalogue = embedded_catalogue().unwrap();
        assert_eq!(catalogue.len(), 16);
        for spec in &catalogue {
            assert!(spec.validate().is_ok(), "{spec:?}");
            assert!(spec.supports_set_charge_limit);
        }
        let leaf = find_model(&catalogue, "nissan", "leaf").unwrap();
        assert_eq!(leaf.ac_max_power_kw, 6.6);
        assert_eq!(leaf.battery_capacity_kwh, 40.0);
    }
}
