"""DB-first intake: complaints committed in the database, their workflows started by relays, idempotent answers."""
