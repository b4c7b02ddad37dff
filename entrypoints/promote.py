"""MLproject entry point `promote`: parse the parameters, then hand over to `mlops promote`."""

import sys

from mlops.cli import main

if __name__ == "__main__":
    sys.exit(main(["promote", *sys.argv[1:]]))
