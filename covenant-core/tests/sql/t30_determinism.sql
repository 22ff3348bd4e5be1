CREATE TABLE t (a, now_col)

INSERT INTO t VALUES (random(), 1)

INSERT INTO t VALUES (randomblob(4), 1)

INSERT INTO t VALUES (CURRENT_TIMESTAMP, 1)

INSERT INTO t VALUES (datetime('now'), 1)

INSERT INTO t VALUES (strftime('%s', 'now'), 1)

INSERT INTO t VALUES (unixepoch(), 1)

INSERT INTO t VALUES (datetime('2024-01-01', 'localtime'), 1)

CREATE TABLE d (a, at DEFAULT CURRENT_TIMESTAMP)

INSERT INTO t (now_col, a) VALUES ('now', 'nowhere')

INSERT INTO t VALUES (date('2024-02-28', '+1 day'), 'random()')

-- read
SELECT a, now_col FROM t ORDER BY rowid

-- read
SELECT typeof(random()), length(CURRENT_TIMESTAMP)
