-- Three connections: disjoint rows commit; B sets row 2 while C adds to it: they collide and C
-- loses (an increment conflicts with a plain write of its row); C retries.
CREATE TABLE c (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
INSERT INTO c VALUES (1, 0), (2, 0), (3, 0);
BEGIN CONCURRENT;
UPDATE c SET n = n + 1 WHERE id = 1;
.spawn
BEGIN CONCURRENT;
UPDATE c SET n = 10 WHERE id = 2;
.spawn
BEGIN CONCURRENT;
UPDATE c SET n = n + 100 WHERE id = 2;
UPDATE c SET n = n + 100 WHERE id = 3;
.use B
COMMIT;
.use C
COMMIT;
.use A
COMMIT;
SELECT id, n FROM c ORDER BY id;
.use C
BEGIN CONCURRENT;
UPDATE c SET n = n + 100 WHERE id = 2;
UPDATE c SET n = n + 100 WHERE id = 3;
COMMIT;
.use A
SELECT id, n FROM c ORDER BY id;
.use Z
.conns
