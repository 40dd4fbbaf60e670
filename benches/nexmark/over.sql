-- OVER: each bid with the average and count of its auction's bids in the
-- last 10 s (RANGE over event time).
CREATE TABLE agg_over (auction BIGINT, price BIGINT, dateTime TIMESTAMP(3), avg_price DOUBLE, bids BIGINT)
  WITH ('connector' = 'blackhole');
INSERT INTO agg_over
SELECT auction, price, dateTime, AVG(price) OVER w, COUNT(*) OVER w
FROM bid
WINDOW w AS (PARTITION BY auction ORDER BY dateTime
  RANGE BETWEEN INTERVAL '10' SECOND PRECEDING AND CURRENT ROW);
