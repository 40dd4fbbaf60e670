-- Sliding average stock price: 60 s windows every 10 s (HOP).
CREATE TABLE stocks (symbol STRING, price DOUBLE, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND)
WITH ('connector' = 'filesystem', 'path' = 'data/stocks.csv', 'format' = 'csv');

SELECT window_start, window_end, symbol, ROUND(AVG(price), 3) AS avg_price, COUNT(*) AS trades
FROM TABLE(HOP(TABLE stocks, DESCRIPTOR(ts), INTERVAL '10' SECOND, INTERVAL '60' SECOND))
GROUP BY window_start, window_end, symbol
ORDER BY window_start, symbol;
