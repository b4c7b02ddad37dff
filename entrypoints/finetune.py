"""MLproject entry point `finetune`: parse the parameters, then hand over to `mlops finetune`."""

import sys

from mlops.cli import main

if __name__ == "__main__":
    sys.exit(main(["finetune", *sys.argv[1:]]))
