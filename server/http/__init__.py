"""The HTTP app (Quart-Trio on Hypercorn): health now; REST API and web client later."""
