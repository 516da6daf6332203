"""Contract fakes of the providers' HTTP APIs: one module per provider, see README.md."""
