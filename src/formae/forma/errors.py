"""What goes wrong when a forma is read, told in the user's terms.

    Exception
     └── FormaError          one or more Problems with a forma file (or a forma received as JSON)

A forma often has several mistakes at once; reporting them all in one go saves the user a
round trip per typo. Each Problem names the file, the resource and the field so that the user
can go straight to the line, and never shows a raw pydantic dump.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake in a forma. ``resource`` is a resource label, ``field`` a dotted path."""

    source: str
    resource: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        parts = [self.source]
        if self.resource is not None:
            parts.append(f'resource "{self.resource}"')
        if self.field:
            parts.append(self.field)
        parts.append(self.message)
        return ": ".join(parts)


class FormaError(Exception):
    """A forma that cannot be used; ``problems`` lists every mistake found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))

    @classmethod
    def single(cls, source: str, message: str) -> FormaError:
        """An error about the forma as a whole, such as a file that cannot be read."""
        return cls([Problem(source, None, None, message)])
