"""fake-aws: a formae resource plugin whose cloud is in memory."""

from formae_fake_aws.plugin import FakeAWSPlugin

__all__ = ["FakeAWSPlugin"]
