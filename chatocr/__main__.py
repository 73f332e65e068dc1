"""`python -m chatocr ...`: the same as the `chatocr` command."""

from chatocr.cli.main import main

raise SystemExit(main())
