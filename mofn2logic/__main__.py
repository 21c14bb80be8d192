import sys

from mofn2logic.cli import main

sys.exit(main())
