"""The source: MongoDB as the migration reads it.

- `codec.py`: the project's BSON codec (how every reader decodes, extended JSON for error logs)
- `dumpfmt.py`: the mongodump directory format (read, count, skip, write)
- `readers.py`: the live (pymongo) and dump sources behind one interface, batches bounded by count and bytes
"""
