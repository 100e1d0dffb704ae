"""The lossless rollback: PostgreSQL's rows, as the application left them, back into MongoDB documents.

- `capture.py`: change capture from go-live (a trigger per table into `mongo2pg.changes`);
- `rows.py`: the inverse of the mapping for one row (UUID -> ObjectId, timestamps -> dates, jsonb ->
  BSON, arrays), the ObjectIds of rows the application created, and the fields that differ;
- `changed.py`: what the captured changes name: the rows, and the documents whose link arrays a
  junction change touches;
- `sync.py`: `reverse-sync`, applying them to MongoDB, crash-safe;
- `check.py`: reverse validation, MongoDB against PostgreSQL for everything changed.
"""
