import sys

from fatlib.cli import main

sys.exit(main())
