"""Stripe: its SDK's client (`client`), its webhooks (`webhooks`), and what it sends, read into
our signals once (`wire`)."""
