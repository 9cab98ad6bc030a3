-- Day-ahead price points, public (ENTSO-E, imported files) and per-organisation uploads.
-- org_id is the nil UUID for public prices rather than NULL: NULLs are distinct in a UNIQUE
-- constraint, so NULL would let the same public slot be stored twice and would rule out the plain
-- ON CONFLICT (zone, org_id, start_at) upsert. Because of the sentinel there is no foreign key to
-- organisations; the store only ever writes an organisation's id taken from an OrgScope.
CREATE TABLE price_points (
    zone           TEXT NOT NULL,
    org_id         UUID NOT NULL,
    start_at       TIMESTAMPTZ NOT NULL,
    end_at         TIMESTAMPTZ NOT NULL,
    price_eur_mwh  DOUBLE PRECISION NOT NULL,
    source         TEXT NOT NULL,
    received_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (zone, org_id, start_at)
);
