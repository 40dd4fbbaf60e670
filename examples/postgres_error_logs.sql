-- Error lines of an application's log stream, from a Kafka topic into a
-- PostgreSQL table (the seed's scenario, with PostgreSQL for MongoDB).
--
-- Needs a Kafka broker on localhost:9092 whose topic `app-logs` holds JSON
-- log lines (examples/data/app.log.jsonl has some), and PostgreSQL on
-- localhost:5432 with the table:
--
--   CREATE TABLE error_logs (ts TIMESTAMP(3), service TEXT, message TEXT);
--
-- 'scan.bounded.mode' makes the job stop at the end of the topic; without
-- it the job keeps running and writes each new error within
-- 'sink.buffer-flush.interval' (1 s).
CREATE TABLE logs (ts TIMESTAMP(3), status STRING, service STRING, message STRING)
WITH ('connector' = 'kafka', 'topic' = 'app-logs',
  'properties.bootstrap.servers' = 'localhost:9092', 'format' = 'json',
  'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset');

CREATE TABLE error_logs (ts TIMESTAMP(3), service STRING, message STRING)
WITH ('connector' = 'jdbc', 'url' = 'jdbc:postgresql://localhost:5432/postgres',
  'table-name' = 'error_logs', 'username' = 'postgres', 'password' = 'postgres');

INSERT INTO error_logs SELECT ts, service, message FROM logs WHERE status = 'error';
