import sys

from lossparity.cli import main

sys.exit(main())
