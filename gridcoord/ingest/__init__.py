"""Ingest: accepted readings to the store, with a disk spool and rejection accounting."""
