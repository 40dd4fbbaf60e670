-- CUMULATE 2 s steps up to 10 s: count/sum/max per auction, each window
-- growing from the start of its 10 s period.
CREATE TABLE agg_cumulate (auction BIGINT, window_start TIMESTAMP(3), window_end TIMESTAMP(3), bids BIGINT, total BIGINT, top BIGINT)
  WITH ('connector' = 'blackhole');
INSERT INTO agg_cumulate
SELECT auction, window_start, window_end, COUNT(*), SUM(price), MAX(price)
FROM TABLE(CUMULATE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
GROUP BY auction, window_start, window_end;
