"""Raw-wire conformance tests: Engine.IO v4 and Socket.IO v5, as the official suites test them."""
