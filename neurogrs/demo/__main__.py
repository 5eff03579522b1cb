import sys

from neurogrs.demo.cli import main

sys.exit(main())
