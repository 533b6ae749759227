"""N concurrent GETs with aiohttp, like the article's client scaled up: the Python driver for
bench/run's scenario 2. TCPConnector(limit=0), so the default pool of 100 connections does not
hold the peer back. Prints one JSON object: requests, ok, failed, wall (s), latency percentiles.

usage: python aiohttp_driver.py BASE_URL COUNT DELAY [TIMEOUT_S]
"""
import asyncio
import json
import sys
import time

import aiohttp


async def one(session, url, latencies):
    start = time.perf_counter()
    try:
        async with session.get(url) as resp:
            await resp.read()
            ok = resp.status == 200
    except Exception:  # noqa: BLE001 - count every failure, the kind does not matter here
        ok = False
    latencies.append(time.perf_counter() - start)
    return ok


async def main(base_url, count, delay, timeout):
    latencies = []
    connector = aiohttp.TCPConnector(limit=0)
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:
        url = f"{base_url.rstrip('/')}/{delay}"
        start = time.perf_counter()
        results = await asyncio.gather(*[one(session, url, latencies) for _ in range(count)])
        wall = time.perf_counter() - start
    latencies.sort()

    def pct(q):
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else None

    ok = sum(results)
    print(json.dumps({
        "requests": count, "ok": ok, "failed": count - ok, "wall": wall,
        "latency": {"p50": pct(0.5), "p99": pct(0.99), "max": latencies[-1] if latencies else None},
    }))


if __name__ == "__main__":
    base, n, d = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    t = float(sys.argv[4]) if len(sys.argv) > 4 else 120.0
    asyncio.run(main(base, n, d, t))
