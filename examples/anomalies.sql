-- Anomaly detection: each reading with the mean and standard deviation of
-- its sensor's last minute (an OVER aggregate over event time), flagged
-- when it is more than 3 standard deviations from the mean.
CREATE TABLE readings (sensor STRING, reading DOUBLE, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND)
WITH ('connector' = 'filesystem', 'path' = 'data/readings.csv', 'format' = 'csv');

SELECT sensor, ts, reading, ROUND(mean, 2) AS mean, ROUND(sd, 2) AS sd,
  ROUND((reading - mean) / sd, 2) AS z,
  ABS(reading - mean) > 3 * sd AS anomaly
FROM (
  SELECT sensor, ts, reading,
    AVG(reading) OVER last_minute AS mean,
    STDDEV_SAMP(reading) OVER last_minute AS sd
  FROM readings
  WINDOW last_minute AS (PARTITION BY sensor ORDER BY ts
    RANGE BETWEEN INTERVAL '1' MINUTE PRECEDING AND CURRENT ROW)
)
WHERE ABS(reading - mean) > 3 * sd
ORDER BY sensor, ts;
