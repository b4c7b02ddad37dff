"""MLproject entry point `evaluate`: parse the parameters, then hand over to `mlops evaluate`."""

import sys

from mlops.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
