-- PostgreSQL's 0005 stores a vehicle's state, runtime and plan as JSON text; SQLite always did.
-- Kept so both backends share migration numbers.
SELECT 1;
