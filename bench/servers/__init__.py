"""The three servers the bench compares; each serves the same events on namespace ``/``.

- ``join(room, ack)``: joins ``room`` and acknowledges ``true``;
- ``broadcast(room, payload)``: emits ``msg`` with ``payload`` to the room, sender included;
- ``echo(payload, ack)``: acknowledges ``payload``.

A client must connect with ``auth`` ``{"name": ...}``. Each server prints a line starting with
``listening`` once it accepts connections.
"""
