"""The Redis cache backend keeps one client per connection pool instead of one per call."""

import pytest
from django.core.cache import cache


def test_one_redis_client_serves_every_cache_call(settings):
    if not settings.REDIS_URL:
        pytest.skip("the Redis cache is used only with REDIS_URL")
    client = cache._cache.get_client(write=True)
    assert cache._cache.get_client() is client
    cache.set("workplace:test-cache", {"n": 1}, 30)
    assert cache.get("workplace:test-cache") == {"n": 1}
    cache.delete("workplace:test-cache")
    assert cache._cache.get_client(write=True) is client
