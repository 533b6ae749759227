"""Chapter 5: the article's async client (aiohttp). `python3 ch05_async_client.py BASE_URL`;
`SLOWLAB_GUIDE_SCALE` scales the delays, as it does for the Rust examples."""

import asyncio
import os
import sys
from datetime import datetime

import aiohttp

SCALE = float(os.environ.get("SLOWLAB_GUIDE_SCALE", "1"))


async def get_time(session: aiohttp.ClientSession, url: str):
    async with session.get(url) as resp:  # async context manager!
        result = await resp.json()
        print(result)
        return result["time_elapsed"]

async def main(base_url: str):
    session = aiohttp.ClientSession(base_url)
    numbers = [7, 2, 6, 4, 0, 9, 4, 2, 5, 5]
    print(numbers)
    start_time = datetime.now()
    urls = [f"/{round(i * SCALE, 3)}" for i in numbers]
    await asyncio.gather(*[get_time(session, url) for url in urls])
    await session.close()
    print(datetime.now() - start_time)

if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
