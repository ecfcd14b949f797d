"""PAdES signing, stamps, timestamps, validation and the registry (built in the signing issue)."""
