"""The plugin protocol on the wire: frames, their protobuf encoding, the handshake, the gRPC stream.

This package and nothing else imports the generated code in ``formae._proto``; the agent and the
plugin SDK speak in the frames of ``formae.wire.frames`` and the types of ``formae.wire.types``.
"""

PROTOCOL_VERSIONS: tuple[int, ...] = (1,)
"""Protocol versions this build speaks, oldest first."""
