"""Operator commands: rtmn-db, rtmn-dlq, rtmn-token."""
