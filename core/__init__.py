"""kyso core: settings, database, audit log, base errors, clock. Imports nothing else of kyso."""
