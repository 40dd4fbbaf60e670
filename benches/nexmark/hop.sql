-- HOP 2 s / 10 s count/sum/max per auction (the Flink side-by-side figure).
CREATE TABLE agg_hop (auction BIGINT, window_start TIMESTAMP(3), bids BIGINT, total BIGINT, top BIGINT)
  WITH ('connector' = 'blackhole');
INSERT INTO agg_hop
SELECT auction, window_start, COUNT(*), SUM(price), MAX(price)
FROM TABLE(HOP(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
GROUP BY auction, window_start, window_end;
