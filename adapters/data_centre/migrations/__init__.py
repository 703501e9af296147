"""Alembic migrations of the 前置库's ``ex_*`` tables (``sgw data-centre migrate``, ``prepare()``)."""
