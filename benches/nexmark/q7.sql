-- q7 (window aggregation): the highest price in each 10 s TUMBLE window.
CREATE TABLE nexmark_q7 (window_start TIMESTAMP(3), window_end TIMESTAMP(3), maxprice BIGINT)
  WITH ('connector' = 'blackhole');
INSERT INTO nexmark_q7
SELECT window_start, window_end, MAX(price) AS maxprice
FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))
GROUP BY window_start, window_end;
