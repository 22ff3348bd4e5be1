CREATE TABLE t (a, now_col)

CREATE TABLE ev (id INTEGER PRIMARY KEY, kind TEXT, created_at TEXT DEFAULT CURRENT_TIMESTAMP, day TEXT DEFAULT CURRENT_DATE, id_blob BLOB DEFAULT (randomblob(16)))

INSERT INTO t VALUES (random(), 1)

INSERT INTO t VALUES (randomblob(4), 1)

INSERT INTO t VALUES (CURRENT_TIMESTAMP, CURRENT_DATE)

INSERT INTO t VALUES (datetime('now'), julianday('now'))

INSERT INTO t VALUES (strftime('%s', 'now'), unixepoch())

INSERT INTO t VALUES (strftime('%Y-%m-%d %H:%M:%f', 'now', '+1 day'), time())

INSERT INTO ev (kind) VALUES ('a'), ('b')

SELECT random(), random(), hex(randomblob(4)), date('now')

INSERT INTO t VALUES (datetime('2024-01-01', 'localtime'), 1)

INSERT INTO t VALUES (datetime('now', 'utc'), 1)

INSERT INTO t VALUES (total_changes(), 1)

INSERT INTO t VALUES (sqlite_version(), 1)

INSERT INTO t (rowid, a) VALUES (9223372036854775807, 'top')

CREATE TABLE d (a, at DEFAULT (datetime('now', 'localtime')))

INSERT INTO t (now_col, a) VALUES ('now', 'nowhere')

INSERT INTO t VALUES (date('2024-02-28', '+1 day'), 'random()')

-- read
SELECT rowid, a, now_col FROM t ORDER BY rowid

-- read
SELECT id, kind, created_at, day, hex(id_blob) FROM ev ORDER BY id

-- read
SELECT typeof(random()), length(CURRENT_TIMESTAMP)
