-- A vehicle's state, runtime and plan are rewritten by the worker every cycle and only ever read
-- whole: stored as JSON text, PostgreSQL no longer parses them into jsonb on write and renders them
-- back on read (most of a batch update's cost). Cast to jsonb to query inside them.
ALTER TABLE electric_vehicles
    ALTER COLUMN state TYPE TEXT USING state::text,
    ALTER COLUMN runtime TYPE TEXT USING runtime::text,
    ALTER COLUMN plan TYPE TEXT USING plan::text;
