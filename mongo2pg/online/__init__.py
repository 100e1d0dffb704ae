"""Online migration (issue #30), its first part: change capture that opens before the bulk read.

- `capture.py`: a change stream per mapped collection, opened before the bulk read starts; each batch of
  events becomes the set of changed `_id`s to read again (`mongo2pg.online_changes`), committed with the
  streams' resume tokens (`mongo2pg.online_streams`) in one transaction, so a capture killed at any moment
  resumes from its stored tokens and loses no change; an event seen twice marks the same `_id` again.

Applying the changes (reading each document as it is now, through the transform) and the cutover drain
are not built yet.
"""
