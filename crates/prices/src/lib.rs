//! Day-ahead prices: the ENTSO-E A44 parser and HTTP client, and file importers.
//!
//! Everything here turns outside data into [`voltplan_core::PriceSlot`]s in UTC; storage,
//! scheduling and the API live elsewhere. Series helpers (resampling, gaps, duplicates,
//! alignment) are in [`voltplan_core::price`].

pub mod entsoe;
pub mod entsoe_client;
pub mod import;

pub use entsoe::{EntsoeDocument, EntsoeParseError};
pub use entsoe_client::{ENTSOE_API_URL, EntsoeClient, FetchError, RetryAfter};
pub use import::{
    Format, ImportError, ImportReport, import_bytes, import_file, import_file_all_columns,
};

#[cfg(test)]
mod tests {
    use voltplan_core::zone::{PriceZone, Resolution};

    #[test]
    fn docs_zone_catalogue_matches_zone_info() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/prices.md");
        let docs = std::fs::read_to_string(path)
            .unwrap_or_else(|error| panic!("cannot read {path}: {error}"));
        for zone in PriceZone::ALL {
            let info = zone.info();
            let row = docs
                .lines()
                .find(|line| line.starts_with(&format!("| {} |", zone.as_str())))
                .unwrap_or_else(|| panic!("docs/prices.md has no catalogue row for {zone}"));
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let resolution = match info.resolution {
                Resolution::QuarterHour => "15 min",
                Resolution::Hour => "1 h",
            };
            assert_eq!(cells[2], info.eic.unwrap_or("–"), "{zone} EIC");
            assert_eq!(cells[3], info.time_zone.name(), "{zone} time zone");
            assert_eq!(cells[4], info.currency, "{zone} currency");
            assert_eq!(cells[5], resolution, "{zone} resolution");
        }
    }
}
