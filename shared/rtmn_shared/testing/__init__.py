"""Test support: a throwaway database and vhost per run, tokens, waiting with a deadline."""
