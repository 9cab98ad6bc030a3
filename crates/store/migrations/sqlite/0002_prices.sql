-- Day-ahead price points, public (ENTSO-E, imported files) and per-organisation uploads.
-- org_id is the nil UUID for public prices rather than NULL: NULLs are distinct in a UNIQUE
-- constraint, so NULL would let the same public slot be stored twice and would rule out the plain
-- ON CONFLICT (zone, org_id, start_at) upsert. Because of the sentinel there is no foreign key to
-- organisations; the store only ever writes an organisation's id taken from an OrgScope.
-- WITHOUT ROWID: the primary key is the only access path, so the table is stored in its order and
-- a window read is one range scan.
CREATE TABLE price_points (
    zone           TEXT NOT NULL,
    org_id         BLOB NOT NULL,
    start_at       TEXT NOT NULL,
    end_at         TEXT NOT NULL,
    price_eur_mwh  REAL NOT NULL,
    source         TEXT NOT NULL,
    received_at    TEXT NOT NULL,
    PRIMARY KEY (zone, org_id, start_at)
) WITHOUT ROWID;
