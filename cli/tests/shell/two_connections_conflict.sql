-- Two connections update the same row inside BEGIN CONCURRENT: first committer wins. (Two
-- increments of one row, `SET bal = bal + ?`, would both commit: they run as merges.)
CREATE TABLE acc (id INTEGER PRIMARY KEY, bal INTEGER NOT NULL);
INSERT INTO acc VALUES (1, 100), (2, 100);
BEGIN CONCURRENT;
UPDATE acc SET bal = 70 WHERE id = 1;
.spawn
BEGIN CONCURRENT;
-- B's snapshot is from its BEGIN: A's write is invisible.
SELECT bal FROM acc WHERE id = 1;
UPDATE acc SET bal = bal + 5 WHERE id = 1;
.conns
.use A
COMMIT;
.use B
COMMIT;
.conns
SELECT id, bal FROM acc ORDER BY id;
-- A failed explicit txn refuses statements until ROLLBACK.
BEGIN;
INSERT INTO acc VALUES (1, 0);
SELECT 1;
.conns
ROLLBACK;
SELECT COUNT(*) FROM acc;
