from bulkrevoke.cli import main

raise SystemExit(main())
