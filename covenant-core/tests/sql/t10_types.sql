CREATE TABLE v (id INTEGER PRIMARY KEY, name VARCHAR(255), at DATETIME, flag BOOLEAN, x);
INSERT INTO v (name, at, flag, x) VALUES ('a', '2014-05-15 07:45:57', 1, NULL);
INSERT INTO v (name, at, flag, x) VALUES ('日本', 1400140000, 0, x'00ff00');
INSERT INTO v (name, at, flag, x) VALUES ('big', NULL, NULL, 9223372036854775807);
INSERT INTO v (name, at, flag, x) VALUES ('real', NULL, NULL, 1.5)

-- read
SELECT id, name, at, flag, x, typeof(x) AS t FROM v ORDER BY id

-- read
SELECT 1, 'a' || 'b', NULL, -9223372036854775808, 2.0

-- read
SELECT count(*) AS n, max(id) FROM v; SELECT name FROM v WHERE id = 2
