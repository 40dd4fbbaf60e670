-- Clicks per user segment and minute: click events (a CSV file with event
-- time, a little out of order, watermark 5 s behind) are filtered, counted
-- per user and minute (TUMBLE, hashed by user), joined with the users
-- table (segment of each user; clicks of unknown users drop out), and
-- summed per segment: how many users clicked and how often.
CREATE TABLE clicks (user_id INT, url STRING, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND)
WITH ('connector' = 'filesystem', 'path' = 'data/clicks.csv', 'format' = 'csv');

CREATE TABLE users (user_id INT, name STRING, segment STRING)
WITH ('connector' = 'filesystem', 'path' = 'data/users.csv', 'format' = 'csv');

SELECT c.window_start, u.segment, COUNT(*) AS users, SUM(c.clicks) AS clicks
FROM (
  SELECT window_start, window_end, user_id, COUNT(*) AS clicks
  FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
  WHERE url <> '/health'
  GROUP BY window_start, window_end, user_id
) c
JOIN users u ON c.user_id = u.user_id
GROUP BY c.window_start, u.segment
ORDER BY c.window_start, u.segment;
