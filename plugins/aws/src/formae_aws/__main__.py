"""``aws-plugin``: the executable the agent spawns."""

from formae.plugin import run
from formae_aws.plugin import AWSPlugin


def main() -> None:
    run(AWSPlugin.from_env())


if __name__ == "__main__":
    main()
