import sys

from syq.cli import main

sys.exit(main())
