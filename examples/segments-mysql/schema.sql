-- Tables for examples/segments-mysql (MySQL 5.7+ or MariaDB 10.2+).
--
-- The seed's add query writes the segment id to `segId`, while its remove and clear queries
-- filter on `segment_id`. So that all five queries run unchanged, `segment_id` is a stored
-- generated column that always equals `segId`.

CREATE TABLE IF NOT EXISTS mysegment (
  segId INT NOT NULL,
  segment_id INT AS (segId) STORED,
  clientId VARCHAR(255) NOT NULL,
  updated DATETIME NULL,
  -- ON DUPLICATE KEY UPDATE needs a unique key: one row per segment and profile.
  PRIMARY KEY (segId, clientId),
  KEY mysegment_segment_id (segment_id, clientId)
);

CREATE TABLE IF NOT EXISTS segments (
  -- Unique so that upsert_segment's ON DUPLICATE KEY UPDATE renames instead of duplicating.
  segment_id INT NOT NULL PRIMARY KEY,
  name VARCHAR(255) NULL,
  updated DATETIME NULL
);
