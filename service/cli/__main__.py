"""`python -m service.cli`: the `hookyard` command, for child processes and tests."""

import sys

from service.cli import main

sys.exit(main())
