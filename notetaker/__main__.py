import sys

from notetaker.cli import main

sys.exit(main())
