#!/usr/bin/env bash
# The README's quickstart: a whole validate → plan → apply → sync on SQLite files, offline.
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO="${1:-quickstart-demo}"
backflow() { node dist/cli/main.js "$@"; }
rm -rf "$DEMO"
backflow init "$DEMO"
backflow --dir "$DEMO" validate
backflow --dir "$DEMO" plan
backflow --dir "$DEMO" apply --auto-approve
backflow --dir "$DEMO" sync users_to_crm
backflow --dir "$DEMO" sync users_to_audit_log
backflow --dir "$DEMO" syncs
echo
echo "The CRM table now holds:"
node -e "const D=require('better-sqlite3');const db=new D(process.argv[1],{readonly:true});console.table(db.prepare('select user_id,email,full_name,plan,color from contacts order by user_id').all())" "$DEMO/crm.db"
