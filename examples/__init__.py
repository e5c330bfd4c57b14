"""Runnable examples.

``python -m examples.engineio_echo`` and ``python -m examples.socketio_reference``.
"""
