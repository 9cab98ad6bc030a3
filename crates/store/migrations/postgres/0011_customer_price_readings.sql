-- The customer's price per MWh (the energy contract's, docs/tariffs.md) beside the day-ahead price
-- of each reading, for `/data`'s `customer_price`. Null without a contract.
ALTER TABLE vehicle_readings ADD COLUMN customer_price_per_mwh DOUBLE PRECISION;
ALTER TABLE wallbox_readings ADD COLUMN customer_price_per_mwh DOUBLE PRECISION;
