//! ENTSO-E A44 XML files (a saved API answer), via [`crate::entsoe`].
//!
//! `column` selects the classification sequence: default `1` (SDAC); `2` reads the EXAA auction
//! that DE-LU and AT documents also carry.

use super::{ImportError, ImportReport, build_report};
use crate::entsoe::{EntsoeDocument, SDAC_SEQUENCE, parse_with_sequence, price_areas};

pub fn import(text: &str, column: Option<&str>) -> Result<ImportReport, ImportError> {
    let sequence = match column {
        None => SDAC_SEQUENCE,
        Some(wanted) => {
            let digits = wanted.trim().trim_start_matches("sequence").trim();
            digits
                .parse::<u32>()
                .map_err(|_| ImportError::UnknownColumn {
                    wanted: wanted.to_owned(),
                    available: vec![
                        "1 (SDAC)".to_owned(),
                        "2 (EXAA, DE-LU and AT only)".to_owned(),
                    ],
                })?
        }
    };
    match parse_with_sequence(text, sequence)? {
        EntsoeDocument::Prices(points) => Ok(ImportReport {
            areas: price_areas(text)?,
            ..build_report(
                format!("A44 classification sequence {sequence}"),
                points,
                0,
                Vec::new(),
            )
        }),
        EntsoeDocument::NotYetPublished { reason } => Err(ImportError::NoPublishedPrices(reason)),
    }
}

#[cfg(test)]
mod tests {
    use crate::import::test_support::{import_shared, shared_price_file};
    use crate::import::{Format, ImportError, import_file};
    use chrono::{TimeZone, Utc};

    #[test]
    fn a_document_is_imported_only_for_the_zone_it_is_for() {
        let swiss = import_shared(
            "entsoe_xml/entsoe_A44_CH_PT60M_2025-11-26.xml",
            Format::EntsoeXml,
            None,
        );
        assert_eq!(swiss.areas, vec!["10YCH-SWISSGRIDZ".to_owned()]);
        swiss.check_zone(voltplan_core::PriceZone::Ch).unwrap();
        let error = swiss.check_zone(voltplan_core::PriceZone::At).unwrap_err();
        assert!(matches!(error, ImportError::WrongZone { .. }), "{error}");
        assert!(error.to_string().contains("10YCH-SWISSGRIDZ"), "{error}");
    }

    #[test]
    fn de_lu_document_imports_two_sdac_days() {
        let path = shared_price_file("entsoe_xml/entsoe_A44_DE_LU_PT15M_2025-10-31.xml");
        let report = import_file(&path, Format::EntsoeXml, None).unwrap();
        assert_eq!(report.zone_column, "A44 classification sequence 1");
        assert_eq!(report.points.len(), 192);
        assert_eq!(
            report.first,
            Some(Utc.with_ymd_and_hms(2025, 10, 30, 23, 0, 0).unwrap())
        );
        assert_eq!(
            report.last,
            Some(Utc.with_ymd_and_hms(2025, 11, 1, 22, 45, 0).unwrap())
        );
        assert!(report.gaps.is_empty());
        assert_eq!(report.points[0].price_eur_mwh, 102.81);
        let exaa = import_file(&path, Format::EntsoeXml, Some("2")).unwrap();
        assert_eq!(exaa.points[0].price_eur_mwh, 91.45);
        assert!(matches!(
            import_file(&path, Format::EntsoeXml, Some("SDAC")),
            Err(ImportError::UnknownColumn { .. })
        ));
    }

    #[test]
    fn ch_document_imports_48_hours() {
        let path = shared_price_file("entsoe_xml/entsoe_A44_CH_PT60M_2025-11-26.xml");
        let report = import_file(path, Format::EntsoeXml, None).unwrap();
        assert_eq!(report.points.len(), 48);
        assert_eq!(report.points[47].price_eur_mwh, 111.8);
        assert!(report.gaps.is_empty());
    }
}
