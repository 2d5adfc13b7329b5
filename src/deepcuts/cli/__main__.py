import sys

from deepcuts.cli import main

sys.exit(main())
