"""MLproject entry point `plan`: parse the parameters, then hand over to `mlops plan`."""

import sys

from mlops.cli import main

if __name__ == "__main__":
    sys.exit(main(["plan", *sys.argv[1:]]))
