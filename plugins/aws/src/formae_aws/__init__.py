"""formae's AWS plugin: CloudFormation's type names and shapes, served through boto3.

``AWSPlugin`` is the plugin; each module of ``formae_aws.services`` serves the types of one AWS
service with a ``TypeHandler`` per type.
"""

from formae_aws.plugin import AWSPlugin

__all__ = ["AWSPlugin"]
