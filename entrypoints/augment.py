"""MLproject entry point `augment`: parse the parameters, then hand over to `mlops augment`."""

import sys

from mlops.cli import main

if __name__ == "__main__":
    sys.exit(main(["augment", *sys.argv[1:]]))
