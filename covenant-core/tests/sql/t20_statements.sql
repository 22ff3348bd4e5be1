CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT NOT NULL)

INSERT INTO a (v) VALUES ('one'), ('two'); UPDATE a SET v = upper(v) WHERE id = 2; DELETE FROM a WHERE id = 1

INSERT INTO a VALUES (10, 'x'); INSERT INTO a VALUES (11, NULL)

-- read
SELECT * FROM a ORDER BY id

-- read
DELETE FROM a

BEGIN; INSERT INTO a VALUES (20, 'y'); COMMIT

ATTACH DATABASE 'other.db' AS other

VACUUM

PRAGMA journal_mode = DELETE

CREATE TEMP TABLE scratch (a)

PRAGMA user_version = 3

-- read
PRAGMA user_version

SELEC 1
