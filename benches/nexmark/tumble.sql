-- TUMBLE 10 s count/sum/max per auction (the Flink side-by-side figure).
CREATE TABLE agg_tumble (auction BIGINT, window_start TIMESTAMP(3), bids BIGINT, total BIGINT, top BIGINT)
  WITH ('connector' = 'blackhole');
INSERT INTO agg_tumble
SELECT auction, window_start, COUNT(*), SUM(price), MAX(price)
FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))
GROUP BY auction, window_start, window_end;
