"""Rate limits counted in the database: two limiters (two replicas) on one database share one limit.

Runs on SQLite, and on PostgreSQL when ROLECRAFT_TEST_DATABASE_URL names one.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import create_engine, func, insert, select

from rolecraft.server.limits import DatabaseRateLimiter, RateLimiter, limiter_for
from rolecraft.store import Store
from rolecraft.store.tables import RateHitRow


def test_two_replicas_on_one_database_admit_the_limit_once(db_url: str) -> None:
    Store(db_url).close()  # migrated
    engines = [create_engine(db_url), create_engine(db_url)]
    replicas = [DatabaseRateLimiter(engine) for engine in engines]
    who, limit = f"key-{uuid.uuid4().hex[:8]}", 7
    with ThreadPoolExecutor(6) as pool:
        waits = list(pool.map(lambda i: replicas[i % 2].retry_after(who, limit), range(3 * limit)))
    assert waits.count(None) == limit
    assert all(0 < w <= 60 for w in waits if w is not None)
    assert replicas[0].retry_after(f"{who}-other", limit) is None  # keys are counted apart
    for engine in engines:
        engine.dispose()


def test_hits_older_than_a_minute_no_longer_count(db_url: str) -> None:
    Store(db_url).close()
    engine = create_engine(db_url)
    who = f"key-{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(insert(RateHitRow.__table__), [{"who": who, "at": time.time() - 61}] * 3)
    limiter = DatabaseRateLimiter(engine)
    assert limiter.retry_after(who, 1) is None
    assert limiter.retry_after(who, 1) is not None
    with engine.connect() as conn:
        left = conn.execute(select(func.count()).where(RateHitRow.__table__.c.who == who)).scalar_one()
    assert left == 1  # the expired hits were deleted, not just skipped
    assert limiter.retry_after(who, 0) is None  # 0 = no limit
    engine.dispose()


def test_the_in_memory_limiter_stays_the_default(db_url: str) -> None:
    engine = create_engine(db_url)
    assert isinstance(limiter_for(False, engine), RateLimiter)
    assert isinstance(limiter_for(True, engine), DatabaseRateLimiter)
    engine.dispose()
