"""``python -m decoding`` entry point."""

from decoding.cli import main

raise SystemExit(main())
