"""``python -m zsar.workbook``: see :mod:`zsar.workbook.runner`."""

from zsar.workbook.runner import main

raise SystemExit(main())
