"""MLproject entry point `sweep`: parse the parameters, then hand over to `mlops sweep`."""

import sys

from mlops.cli import main

if __name__ == "__main__":
    sys.exit(main(["sweep", *sys.argv[1:]]))
