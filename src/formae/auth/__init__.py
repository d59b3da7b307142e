"""Who may call the agent's REST API: bearer tokens, their roles, and the files they live in.

Shared by the agent (which mints and verifies tokens), the API (which guards every route) and the
CLI (which finds a token to send). It imports nothing else from formae, so each of those layers
can depend on it.
"""

from formae.auth.tokens import (
    TOKEN_ENV,
    ApiToken,
    Role,
    TokenFormatError,
    hash_secret,
    load_or_create_token_file,
    read_token_file,
    token_file,
)

__all__ = [
    "TOKEN_ENV",
    "ApiToken",
    "Role",
    "TokenFormatError",
    "hash_secret",
    "load_or_create_token_file",
    "read_token_file",
    "token_file",
]
