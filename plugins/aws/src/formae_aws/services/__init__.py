"""One module per AWS service; each lists its ``HANDLERS``, one per CloudFormation type it serves."""

from __future__ import annotations

from formae_aws.handler import TypeHandler


def all_handlers() -> list[TypeHandler]:
    """A fresh handler of every type served."""
    from formae_aws.services import awslambda, dynamodb, ec2, iam, logs, s3, secretsmanager, sns, sqs

    modules = (ec2, s3, sqs, sns, dynamodb, iam, logs, secretsmanager, awslambda)
    return [kind() for module in modules for kind in module.HANDLERS]
