"""The fault and abuse suite (issue 9): every row of docs/reliability.md is a test here
(or in tests/delivery/test_workers_integration.py for real workers and Redis)."""
