-- Per-device network traffic per minute, upserted into a PostgreSQL table
-- by its primary key: each new reading updates its device's row for that
-- minute, so the table is always current.
--
-- Needs PostgreSQL on localhost:5432 with the table:
--
--   CREATE TABLE traffic_per_minute (device TEXT, minute TIMESTAMP(3),
--     rx_bytes BIGINT, tx_bytes BIGINT, packets BIGINT,
--     PRIMARY KEY (device, minute));
CREATE TABLE traffic (
  device STRING,
  receive_bytes BIGINT,
  send_bytes BIGINT,
  receive_packets BIGINT,
  send_packets BIGINT,
  ts TIMESTAMP(3)
) WITH ('connector' = 'filesystem', 'path' = 'data/traffic.csv', 'format' = 'csv');

CREATE TABLE traffic_per_minute (device STRING, `minute` TIMESTAMP(3), rx_bytes BIGINT,
  tx_bytes BIGINT, packets BIGINT, PRIMARY KEY (device, `minute`) NOT ENFORCED)
WITH ('connector' = 'jdbc', 'url' = 'jdbc:postgresql://localhost:5432/postgres',
  'table-name' = 'traffic_per_minute', 'username' = 'postgres', 'password' = 'postgres');

INSERT INTO traffic_per_minute
SELECT device, FLOOR(ts TO MINUTE), SUM(receive_bytes), SUM(send_bytes),
       SUM(receive_packets + send_packets)
FROM traffic
GROUP BY device, FLOOR(ts TO MINUTE);
