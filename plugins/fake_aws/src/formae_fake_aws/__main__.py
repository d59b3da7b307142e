"""``fake-aws-plugin``: the executable the agent spawns."""

from formae.plugin import run
from formae_fake_aws.plugin import FakeAWSPlugin


def main() -> None:
    run(FakeAWSPlugin.from_env())


if __name__ == "__main__":
    main()
