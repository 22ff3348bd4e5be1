CREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL DEFAULT 'anon', born DATE);
CREATE INDEX users_name ON users (name);
CREATE TABLE "Odd Name" (a)

-- read
SHOW TABLES

-- read
SHOW CREATE TABLE users

-- read
SHOW INDEX FROM TABLE users

-- read
SHOW INDEX FROM users

-- read
SHOW COLUMNS FROM users

-- read
DESC "Odd Name"

-- read
describe users;

-- read
SHOW DATABASES
