"""Reports (报表): figures read from the orders and the ledger for HQ users, each
limited to the stores the user may read (`reports.read`). Above `admin` (who may
read what) and the contexts whose tables it adds up."""
