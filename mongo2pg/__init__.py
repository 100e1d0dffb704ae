"""mongo2pg: the MongoDB -> PostgreSQL migration engine (no Ansible import here)."""

__version__ = "0.1.0"
