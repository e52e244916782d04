"""Data protection by default: retention of personal series, open-data aggregates."""
