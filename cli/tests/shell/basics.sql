-- Plain output: one line per row, | between values, NULL as empty, no header by default.
CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL);
INSERT INTO t (name, score) VALUES ('ann', 1.5), ('bob', NULL), ('cy', 3);
SELECT * FROM t ORDER BY id;
.headers on
SELECT name, score * 2 AS doubled FROM t WHERE score IS NOT NULL ORDER BY name;
.headers off
SELECT COUNT(*),
       SUM(score)
  FROM t;
-- Errors print one line and the shell goes on.
INSERT INTO t (name) VALUES (NULL);
SELECT nope FROM t;
SELEC 1;
SELECT upper(name) FROM t;
.tables
.schema t
.bogus
SELECT 'still here';
