import sys

from hospops.cli import main

sys.exit(main())
