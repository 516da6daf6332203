"""The HTTP side every service shares: problems, routes, auth, rate limits, the app factory."""
