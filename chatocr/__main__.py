"""`python -m chatocr ...`: the same as the `chatocr` command."""

import sys

from chatocr.cli.main import main

sys.exit(main())
