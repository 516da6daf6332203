"""The common library of the RTMN integration services."""
