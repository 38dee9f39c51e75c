"""Code every service and the `rekisteri` tool use: contracts, topology, settings, plumbing."""
