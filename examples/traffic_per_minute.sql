-- Per-device network traffic per minute (TUMBLE), written to a CSV file
-- and printed.
CREATE TABLE traffic (
  device STRING,
  receive_bytes BIGINT,
  send_bytes BIGINT,
  receive_packets BIGINT,
  send_packets BIGINT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
) WITH ('connector' = 'filesystem', 'path' = 'data/traffic.csv', 'format' = 'csv');

SELECT window_start, window_end, device,
       SUM(receive_bytes) AS rx_bytes, SUM(send_bytes) AS tx_bytes,
       SUM(receive_packets + send_packets) AS packets
FROM TABLE(TUMBLE(TABLE traffic, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
GROUP BY window_start, window_end, device
ORDER BY window_start, device;
