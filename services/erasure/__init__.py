"""The erasure service."""
