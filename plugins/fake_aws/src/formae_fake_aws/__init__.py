"""fake-aws: a formae resource plugin whose cloud lives in memory, or in a file replicas share."""

from formae_fake_aws.plugin import FakeAWSPlugin

__all__ = ["FakeAWSPlugin"]
