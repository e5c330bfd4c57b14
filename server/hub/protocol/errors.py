class ProtocolError(ValueError):
    """Input that does not follow the Engine.IO v4 or Socket.IO v5 wire format.

    The message says what was wrong; the session that received it is closed, as the
    specifications require, and nothing else is affected.
    """
