"""Load tests: ours beside Node Socket.IO and python-socketio. Run ``python -m bench.run``."""
