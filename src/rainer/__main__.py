import sys

from rainer.cli import main

sys.exit(main())
