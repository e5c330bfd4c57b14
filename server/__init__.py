"""Trio real-time hub: a Socket.IO server for Trio and the project tool's real-time service."""
