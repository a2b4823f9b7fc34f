-- Creates crm.db for the quickstart (run by `backflow init`): the table the users_to_crm mapping mirrors into.
CREATE TABLE contacts (
  user_id TEXT PRIMARY KEY,
  email TEXT NOT NULL,
  full_name TEXT,
  plan TEXT,
  color TEXT,
  profile TEXT,
  purchases TEXT
);
