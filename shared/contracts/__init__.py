"""Message contracts: the one definition of every payload that crosses a service boundary."""
