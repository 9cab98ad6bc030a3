//! The SQL of the organisation-wide list: one query text per backend ([`Dialect`]), built from a
//! filter and a page, with its bind values in order.

use super::*;

/// The database a statement is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// How a statement reads members of the state document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StateReader {
    Sqlite,
    /// PostgreSQL, scanning the JSON text for each member.
    PgPerMember,
    /// PostgreSQL, parsing each row's document into `jsonb` once.
    PgParsedOnce,
}

impl StateReader {
    fn new(dialect: Dialect, filter: &OrgVehicleFilter) -> Self {
        match dialect {
            Dialect::Sqlite => StateReader::Sqlite,
            Dialect::Postgres if member_reads(filter) > 2 => StateReader::PgParsedOnce,
            Dialect::Postgres => StateReader::PgPerMember,
        }
    }

    /// The member's JSON text, SQL NULL when absent. `key` is one of this file's constants.
    fn member(self, key: &str) -> String {
        match self {
            StateReader::Sqlite => format!("(v.state -> '$.{key}')"),
            StateReader::PgPerMember => format!("((v.state::json -> '{key}')::text)"),
            StateReader::PgParsedOnce => format!("((st.doc -> '{key}')::text)"),
        }
    }

    /// What the FROM clause adds for [`StateReader::member`]: `OFFSET 0` keeps the planner from
    /// inlining the parse into every reference.
    fn source(self) -> &'static str {
        match self {
            StateReader::Sqlite | StateReader::PgPerMember => "",
            StateReader::PgParsedOnce => {
                " CROSS JOIN LATERAL (SELECT v.state::jsonb AS doc OFFSET 0) st"
            }
        }
    }
}

/// How many members of the state document the filter's conditions read.
fn member_reads(filter: &OrgVehicleFilter) -> usize {
    let flags = [
        filter.action_needed.is_some(),
        filter.is_plugged_in.is_some(),
        filter.is_charging.is_some(),
        !filter.connection_status.is_empty(),
        !filter.monitoring_status.is_empty(),
        !filter.steering_status.is_empty(),
    ];
    let worst = if filter.status.is_empty() { 0 } else { 3 };
    flags.into_iter().filter(|f| *f).count() + worst
}

impl Dialect {
    fn greatest(self) -> &'static str {
        match self {
            Dialect::Sqlite => "max",
            Dialect::Postgres => "GREATEST",
        }
    }
}

/// A value bound to a `$n` placeholder.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Bind {
    Uuid(Uuid),
    Text(String),
    Int(i64),
}

/// The two statements of a page: the count over all pages, and the page. The page's binds start
/// with the count's.
#[derive(Debug)]
pub(crate) struct OrgVehicleQuery {
    pub count_sql: String,
    pub page_sql: String,
    pub binds: Vec<Bind>,
    pub count_binds: usize,
}

/// A constant as an SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn json_literal<T: serde::Serialize>(value: &T) -> Result<String> {
    Ok(literal(&serde_json::to_string(value)?))
}

struct Builder {
    dialect: Dialect,
    reader: StateReader,
    sql: String,
    binds: Vec<Bind>,
    /// The state document's defaults, for members a stored document lacks.
    defaults: serde_json::Value,
    /// Whether a filter reads the state document.
    reads_state: bool,
}

impl Builder {
    fn param(&mut self, bind: Bind) -> String {
        self.binds.push(bind);
        format!("${}", self.binds.len())
    }

    /// The member as the API shows it: its JSON text, or its default's when absent.
    fn member_or_default(&mut self, key: &str) -> Result<String> {
        self.reads_state = true;
        let default = match self.defaults.get(key) {
            Some(value) => json_literal(value)?,
            None => "NULL".to_owned(),
        };
        Ok(format!("COALESCE({}, {default})", self.reader.member(key)))
    }

    fn flag(&mut self, key: &str, value: Option<bool>) -> Result<()> {
        if let Some(value) = value {
            let member = self.member_or_default(key)?;
            let value = json_literal(&value)?;
            self.sql.push_str(&format!(" AND {member} = {value}"));
        }
        Ok(())
    }

    fn levels(&mut self, key: &str, levels: &[StatusLevel]) -> Result<()> {
        if levels.is_empty() {
            return Ok(());
        }
        let member = self.member_or_default(key)?;
        let values = levels
            .iter()
            .map(json_literal)
            .collect::<Result<Vec<_>>>()?
            .join(", ");
        self.sql.push_str(&format!(" AND {member} IN ({values})"));
        Ok(())
    }

    /// The rank of one status dimension, as [`status_rank`].
    fn rank(&mut self, key: &str) -> Result<String> {
        let mut sql = format!("CASE {}", self.member_or_default(key)?);
        for level in STATUS_LEVELS {
            sql.push_str(&format!(
                " WHEN {} THEN {}",
                json_literal(&level)?,
                status_rank(level)
            ));
        }
        sql.push_str(&format!(" ELSE {} END", status_rank(StatusLevel::Unknown)));
        Ok(sql)
    }

    fn worst(&mut self, levels: &[StatusLevel]) -> Result<()> {
        if levels.is_empty() {
            return Ok(());
        }
        let ranks = [
            self.rank("connection_status")?,
            self.rank("monitoring_status")?,
            self.rank("steering_status")?,
        ]
        .join(", ");
        let wanted = levels
            .iter()
            .map(|l| status_rank(*l).to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let greatest = self.dialect.greatest();
        self.sql
            .push_str(&format!(" AND {greatest}({ranks}) IN ({wanted})"));
        Ok(())
    }
}

const FROM: &str =
    "FROM electric_vehicles v JOIN users u ON u.org_id = v.org_id AND u.id = v.user_id";

impl OrgVehicleQuery {
    pub(crate) fn build(
        dialect: Dialect,
        org: OrgScope,
        filter: &OrgVehicleFilter,
        paging: OrgVehiclePaging,
    ) -> Result<Self> {
        let mut b = Builder {
            dialect,
            reader: StateReader::new(dialect, filter),
            sql: String::new(),
            binds: Vec::new(),
            defaults: serde_json::to_value(EvState::default())?,
            reads_state: false,
        };
        let org = b.param(Bind::Uuid(org.id()));
        b.sql.push_str(&format!("WHERE v.org_id = {org}"));
        if !filter.include_deleted {
            b.sql
                .push_str(" AND v.deleted_at IS NULL AND u.deleted_at IS NULL");
        }
        if let Some(user_id) = filter.user_id {
            let p = b.param(Bind::Uuid(user_id));
            b.sql.push_str(&format!(" AND v.user_id = {p}"));
        }
        if !filter.price_zones.is_empty() {
            let zones = filter
                .price_zones
                .iter()
                .map(|z| b.param(Bind::Text(z.as_str().to_owned())))
                .collect::<Vec<_>>()
                .join(", ");
            b.sql.push_str(&format!(" AND v.price_zone IN ({zones})"));
        }
        b.flag("action_needed", filter.action_needed)?;
        b.flag("is_plugged_in", filter.is_plugged_in)?;
        b.flag("is_charging", filter.is_charging)?;
        b.levels("connection_status", &filter.connection_status)?;
        b.levels("monitoring_status", &filter.monitoring_status)?;
        b.levels("steering_status", &filter.steering_status)?;
        b.worst(&filter.status)?;

        let from = if b.reads_state {
            format!("{FROM}{}", b.reader.source())
        } else {
            FROM.to_owned()
        };
        let count_sql = format!("SELECT COUNT(*) {from} {}", b.sql);
        let count_binds = b.binds.len();
        if let Some(after) = paging.after {
            let p = b.param(Bind::Uuid(after));
            b.sql.push_str(&format!(" AND v.id > {p}"));
        }
        let limit = b.param(Bind::Int(paging.limit));
        let offset = b.param(Bind::Int(paging.offset));
        let page_sql = format!(
            "SELECT u.id, u.org_id, u.email, u.role, u.external_user_id, u.profile, u.created_at, \
               u.updated_at, u.deleted_at, v.id AS v_id, v.building_id AS v_building_id, \
               v.price_zone AS v_price_zone, v.settings AS v_settings, v.state AS v_state, \
               v.created_at AS v_created_at, v.updated_at AS v_updated_at, v.deleted_at AS v_deleted_at \
             {from} {} ORDER BY v.id LIMIT {limit} OFFSET {offset}",
            b.sql
        );
        Ok(OrgVehicleQuery {
            count_sql,
            page_sql,
            binds: b.binds,
            count_binds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org() -> OrgScope {
        OrgScope::new(Uuid::nil())
    }

    const PAGE: OrgVehiclePaging = OrgVehiclePaging {
        limit: 50,
        offset: 0,
        after: None,
    };

    #[test]
    fn the_worst_dimension_is_the_status() {
        let state = |c, m, s| EvState {
            connection_status: c,
            monitoring_status: m,
            steering_status: s,
            ..EvState::default()
        };
        use StatusLevel::*;
        assert_eq!(worst_status(&state(Ok, Ok, Ok)), Ok);
        assert_eq!(worst_status(&state(Ok, Unknown, Ok)), Unknown);
        assert_eq!(worst_status(&state(Warning, Unknown, Ok)), Warning);
        assert_eq!(worst_status(&state(Warning, Unknown, Error)), Error);
        assert_eq!(worst_status(&EvState::default()), Unknown);
    }

    #[test]
    fn without_filters_only_tenancy_and_liveness_are_tested() {
        let q = OrgVehicleQuery::build(Dialect::Sqlite, org(), &OrgVehicleFilter::default(), PAGE)
            .unwrap();
        assert_eq!(
            q.count_sql,
            "SELECT COUNT(*) FROM electric_vehicles v JOIN users u ON u.org_id = v.org_id AND u.id = v.user_id \
             WHERE v.org_id = $1 AND v.deleted_at IS NULL AND u.deleted_at IS NULL"
        );
        assert!(q.page_sql.ends_with("ORDER BY v.id LIMIT $2 OFFSET $3"));
        assert_eq!(q.count_binds, 1);
        assert_eq!(
            q.binds,
            vec![Bind::Uuid(Uuid::nil()), Bind::Int(50), Bind::Int(0)]
        );
    }

    #[test]
    fn state_filters_fall_back_to_the_documents_defaults() {
        let filter = OrgVehicleFilter {
            is_plugged_in: Some(true),
            action_needed: Some(false),
            connection_status: vec![StatusLevel::Error, StatusLevel::Warning],
            status: vec![StatusLevel::Ok],
            include_deleted: true,
            ..OrgVehicleFilter::default()
        };
        let q = OrgVehicleQuery::build(Dialect::Sqlite, org(), &filter, PAGE).unwrap();
        assert!(!q.count_sql.contains("deleted_at"));
        assert!(
            q.count_sql
                .contains("COALESCE((v.state -> '$.is_plugged_in'), 'false') = 'true'"),
            "{}",
            q.count_sql
        );
        assert!(
            q.count_sql
                .contains("COALESCE((v.state -> '$.action_needed'), 'false') = 'false'")
        );
        assert!(q.count_sql.contains(
            "COALESCE((v.state -> '$.connection_status'), '\"unknown\"') IN ('\"error\"', '\"warning\"')"
        ));
        assert!(q.count_sql.contains("max(CASE"));
        assert!(q.count_sql.ends_with(") IN (0)"));

        let q = OrgVehicleQuery::build(Dialect::Postgres, org(), &filter, PAGE).unwrap();
        // Six members read: each row's document is parsed once.
        assert!(
            q.count_sql
                .contains("COALESCE(((st.doc -> 'is_plugged_in')::text), 'false') = 'true'")
        );
        assert!(q.count_sql.contains("GREATEST(CASE"));
        assert!(q.count_sql.contains(
            "CROSS JOIN LATERAL (SELECT v.state::jsonb AS doc OFFSET 0) st WHERE v.org_id = $1"
        ));
        assert!(q.page_sql.contains("OFFSET 0) st WHERE"));
    }

    #[test]
    fn keyset_paging_does_not_change_the_total() {
        let filter = OrgVehicleFilter {
            user_id: Some(Uuid::max()),
            price_zones: vec![PriceZone::At, PriceZone::DeLu],
            ..OrgVehicleFilter::default()
        };
        let paging = OrgVehiclePaging {
            after: Some(Uuid::max()),
            ..PAGE
        };
        let q = OrgVehicleQuery::build(Dialect::Postgres, org(), &filter, paging).unwrap();
        assert!(q.count_sql.contains("v.price_zone IN ($3, $4)"));
        assert!(!q.count_sql.contains("v.id >"));
        assert!(
            !q.count_sql.contains("LATERAL"),
            "no state filter, no parse"
        );
        assert_eq!(q.count_binds, 4);
        assert!(
            q.page_sql
                .contains(" AND v.id > $5 ORDER BY v.id LIMIT $6 OFFSET $7")
        );
        assert_eq!(q.binds[4], Bind::Uuid(Uuid::max()));
    }

    #[test]
    fn postgres_parses_a_document_once_only_when_a_filter_reads_many_members() {
        let two = OrgVehicleFilter {
            is_plugged_in: Some(true),
            steering_status: vec![StatusLevel::Ok],
            ..OrgVehicleFilter::default()
        };
        let q = OrgVehicleQuery::build(Dialect::Postgres, org(), &two, PAGE).unwrap();
        assert!(!q.count_sql.contains("LATERAL"));
        assert!(
            q.count_sql
                .contains("COALESCE(((v.state::json -> 'is_plugged_in')::text), 'false') = 'true'")
        );
        let three = OrgVehicleFilter {
            is_charging: Some(false),
            ..two
        };
        let q = OrgVehicleQuery::build(Dialect::Postgres, org(), &three, PAGE).unwrap();
        assert!(q.count_sql.contains("LATERAL"));
        assert!(!q.count_sql.contains("v.state::json ->"));
        let status = OrgVehicleFilter {
            status: vec![StatusLevel::Error],
            ..OrgVehicleFilter::default()
        };
        let q = OrgVehicleQuery::build(Dialect::Postgres, org(), &status, PAGE).unwrap();
        assert!(
            q.count_sql.contains("LATERAL"),
            "status reads three members"
        );
    }
}
