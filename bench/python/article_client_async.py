# The article's async client ("A Speedy Async Script"), unchanged apart from the line breaks the
# article's page lost. It calls http://localhost:8000. (It prints start - now, a negative time:
# the article's own slip, kept.)
import asyncio
import aiohttp
from datetime import datetime
from random import randrange


async def get_time(session: aiohttp.ClientSession, url: str):
    async with session.get(url) as resp:  # async context manager!
        result = await resp.json()
        print(result)
        return result["time_elapsed"]


async def main(base_url: str):
    session = aiohttp.ClientSession(base_url)
    # select 10 random numbers between 0, 10
    numbers = [randrange(0, 10) for i in range(10)]
    # await responses from each request
    await asyncio.gather(*[
        get_time(session, url)
        for url in [f"/{i}" for i in numbers]
    ])
    await session.close()

if __name__ == "__main__":
    start_time = datetime.now()
    asyncio.run(main("http://localhost:8000"))
    print(start_time - datetime.now())
