-- Filter the error lines out of a log stream into CSV part files, then show
-- them. Paths are relative to this file's folder; the output goes to
-- examples/output/error_logs/ (INSERT OVERWRITE replaces the last run's).
CREATE TABLE logs (ts TIMESTAMP(3), status STRING, service STRING, message STRING)
WITH ('connector' = 'filesystem', 'path' = 'data/app.log.jsonl', 'format' = 'json');

CREATE TABLE error_logs (ts TIMESTAMP(3), service STRING, message STRING)
WITH ('connector' = 'filesystem', 'path' = 'output/error_logs', 'format' = 'csv');

INSERT OVERWRITE error_logs SELECT ts, service, message FROM logs WHERE status = 'error';

SELECT * FROM error_logs;
