-- Creates warehouse.db for the quickstart (run by `backflow init`).
CREATE TABLE users (
  id INTEGER PRIMARY KEY,
  email TEXT NOT NULL,
  name TEXT,
  plan TEXT,
  traits TEXT,          -- JSON object as text: decoded where an object is expected
  products TEXT,        -- JSON array of objects as text
  active INTEGER NOT NULL DEFAULT 1,
  updated_at TEXT NOT NULL
);
INSERT INTO users (id, email, name, plan, traits, products, active, updated_at) VALUES
  (1, 'ada@example.com', 'Ada Lovelace', 'pro', '{"color":"green","company":"Analytical Engines"}',
      '[{"productName":"jacket","price":40,"currency":"USD"},{"productName":"socks","price":5}]', 1, '2026-11-01T10:00:00Z'),
  (2, 'grace@example.com', 'Grace Hopper', 'team', '{"color":"blue","company":"Navy"}', '[]', 1, '2026-11-02T11:00:00Z'),
  (3, 'alan@example.com', 'Alan Turing', 'free', '{"color":"red"}', '[{"productName":"tshirt","price":20}]', 1, '2026-11-03T12:00:00Z'),
  (4, 'edsger@example.com', 'Edsger Dijkstra', 'pro', '{"color":"pink","company":"EWD"}', NULL, 1, '2026-11-04T09:30:00Z'),
  (5, 'barbara@example.com', 'Barbara Liskov', 'team', '{}', '[{"productName":"book","price":12}]', 0, '2026-11-05T08:00:00Z');
