"""ResourceType and namespace_of: the one place a type name is split into its namespace."""

from __future__ import annotations

import pytest

from formae.model import ResourceType
from formae.model.resource_type import namespace_of

pytestmark = pytest.mark.timeout(10)


@pytest.mark.parametrize(
    ("name", "namespace"),
    [("AWS::S3::Bucket", "AWS"), ("PostgreSQL::Role", "PostgreSQL"), ("Fake-AWS::A::B::C", "Fake-AWS")],
)
def test_the_namespace_is_what_comes_before_the_first_separator(name: str, namespace: str) -> None:
    assert namespace_of(name) == namespace
    assert ResourceType(name).namespace == namespace


def test_namespace_of_does_not_validate_what_was_already_accepted() -> None:
    assert namespace_of("NoSeparator") == "NoSeparator"
    with pytest.raises(ValueError, match="is not of the form"):
        ResourceType("NoSeparator")
