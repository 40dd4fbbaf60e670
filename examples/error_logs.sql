-- Filter the error lines out of a log stream into a CSV file, then show them.
CREATE TABLE logs (ts TIMESTAMP(3), status STRING, service STRING, message STRING)
WITH ('connector' = 'filesystem', 'path' = 'examples/data/app.log.jsonl', 'format' = 'json');

CREATE TABLE error_logs (ts TIMESTAMP(3), service STRING, message STRING)
WITH ('connector' = 'filesystem', 'path' = 'target/examples/error_logs.csv', 'format' = 'csv');

INSERT INTO error_logs SELECT ts, service, message FROM logs WHERE status = 'error';

SELECT * FROM error_logs;
